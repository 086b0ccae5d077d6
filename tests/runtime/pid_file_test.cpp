// The master's pid file and its lock: a command believes a pid only while
// its master holds the lock, so a stale file's reused pid is never signalled.
// Real files, real processes (a forked child holds the lock).
#include <atoll/runtime/pid_file.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "host/temp_dir.hpp"

using namespace atl;
using atl::test::TempDir;

namespace {

// A child that takes the pid file and holds it until killed.
struct Holder {
  pid_t pid = -1;
  explicit Holder(const std::string& path) {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      try {
        runtime::hold_pid_file(path);
      } catch (...) {
        ::_exit(1);
      }
      char c = 1;
      if (::write(ready[1], &c, 1) != 1) ::_exit(1);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    EXPECT_EQ(::read(ready[0], &c, 1), 1) << "the holder could not take the pid file";
    ::close(ready[0]);
  }
  ~Holder() { stop(); }
  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
};

}  // namespace

TEST(PidFile, TheHolderIsBelieved) {
  TempDir dir;
  std::string path = dir / "atoll.pid";
  Holder h(path);
  std::string why;
  EXPECT_EQ(runtime::locked_pid(path, why), h.pid) << why;
}

TEST(PidFile, AStaleFileNamingALiveProcessIsNotBelieved) {
  TempDir dir;
  std::string path = dir / "atoll.pid";
  // A live process that does not hold the lock (as a reused pid would be).
  pid_t bystander = ::fork();
  if (bystander == 0) {
    for (;;) ::pause();
  }
  std::ofstream(path) << bystander << "\n";
  std::string why;
  EXPECT_EQ(runtime::locked_pid(path, why), 0);
  EXPECT_NE(why.find("stale"), std::string::npos) << why;
  EXPECT_NE(why.find(std::to_string(bystander)), std::string::npos) << why;
  EXPECT_EQ(::kill(bystander, 0), 0) << "the bystander is untouched";
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, nullptr, 0);
}

TEST(PidFile, TheLockEndsWithItsHolder) {
  TempDir dir;
  std::string path = dir / "atoll.pid";
  Holder h(path);
  pid_t was = h.pid;
  h.stop();  // as a crash would: nobody removes the file
  std::string why;
  EXPECT_EQ(runtime::locked_pid(path, why), 0);
  EXPECT_NE(why.find(std::to_string(was)), std::string::npos) << why;
}

TEST(PidFile, MissingAndEmptyFilesSaySo) {
  TempDir dir;
  std::string why;
  EXPECT_EQ(runtime::locked_pid(dir / "none.pid", why), 0);
  EXPECT_NE(why.find("cannot read"), std::string::npos) << why;
  std::ofstream(dir / "empty.pid") << "";
  EXPECT_EQ(runtime::locked_pid(dir / "empty.pid", why), 0);
  EXPECT_NE(why.find("holds no pid"), std::string::npos) << why;
}

TEST(PidFile, ASecondMasterIsRefusedUnlessItIsTheUpgrade) {
  TempDir dir;
  std::string path = dir / "atoll.pid";
  Holder h(path);
  try {
    runtime::hold_pid_file(path);
    ADD_FAILURE() << "a second holder was let in";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(h.pid)), std::string::npos) << e.what();
  }
  std::string why;
  EXPECT_EQ(runtime::locked_pid(path, why), h.pid) << "the refused one changed nothing";
  // The upgrade's new master names the old one and takes over the file.
  int fd = runtime::hold_pid_file(path, h.pid);
  EXPECT_GE(fd, 0);
  std::ifstream f(path);
  pid_t in_file = 0;
  f >> in_file;
  EXPECT_EQ(in_file, ::getpid());
  ::close(fd);
}
