#include <atoll/host/deploy_bell.hpp>

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace atl::host {

void ring_deploy_bell(const std::string& data) noexcept {
  std::string path = data + "/" + deploy_bell_file;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;
  ::close(fd);  // IN_CLOSE_WRITE is the ring
}

DeployBell::DeployBell(const std::string& data) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  if (::inotify_add_watch(fd_, data.c_str(), IN_CLOSE_WRITE) < 0) {
    int e = errno;
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "watching " + data + " for deploys");
  }
}

DeployBell::~DeployBell() {
  if (fd_ >= 0) ::close(fd_);
}

bool DeployBell::drain() noexcept {
  bool rang = false;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return rang;  // EAGAIN: nothing more
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len && std::strcmp(ev->name, deploy_bell_file) == 0) rang = true;
      if (ev->mask & IN_Q_OVERFLOW) rang = true;  // events were lost: look anyway
      p += sizeof(inotify_event) + ev->len;
    }
  }
}

}  // namespace atl::host
