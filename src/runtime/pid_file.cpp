#include <atoll/runtime/pid_file.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace atl::runtime {

namespace {

// The pid of the process holding a write lock on `fd`'s file, or 0.
pid_t lock_holder(int fd) {
  struct flock fl {};
  fl.l_type = F_RDLCK;  // asks "would a read lock conflict?": only a write lock does
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) return 0;
  return fl.l_pid;
}

pid_t read_pid(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  long v = std::strtol(buf, nullptr, 10);
  return v > 0 ? pid_t(v) : 0;
}

}  // namespace

pid_t pid_in_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  pid_t pid = read_pid(fd);
  ::close(fd);
  return pid;
}

int hold_pid_file(const std::string& path, pid_t may_hold) {
  int old = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (old >= 0) {
    pid_t holder = lock_holder(old);
    ::close(old);
    if (holder > 0 && holder != ::getpid() && holder != may_hold)
      throw std::runtime_error("another atoll master (pid " + std::to_string(holder) + ") holds " +
                               path + ": stop it first, or use `atoll upgrade`");
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  std::string line = std::to_string(::getpid()) + "\n";
  if (::fcntl(fd, F_SETLK, &fl) != 0 ||
      ::write(fd, line.data(), line.size()) != ssize_t(line.size()) ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(e));
  }
  return fd;
}

pid_t locked_pid(const std::string& path, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = "cannot read " + path + ": " + std::strerror(errno);
    return 0;
  }
  pid_t pid = read_pid(fd);
  pid_t holder = lock_holder(fd);
  ::close(fd);
  if (pid == 0) {
    why = path + " holds no pid";
    return 0;
  }
  if (holder != pid) {
    why = path + " names pid " + std::to_string(pid) +
          (holder ? ", but pid " + std::to_string(holder) + " holds its lock"
                  : ", but no master holds its lock: the file is stale (left by a master that "
                    "died)");
    return 0;
  }
  return pid;
}

}  // namespace atl::runtime
