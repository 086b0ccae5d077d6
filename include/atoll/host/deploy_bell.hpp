#pragma once
// The deploy doorbell: how a command that changes deploys in a data directory
// (`atoll publish --data`, `atoll rollback --data`) tells a server running on
// that directory at once, instead of waiting for its poll. The command writes
// DATA/deploy.bell after its transaction commits; the server's master
// watches the directory with inotify and wakes its workers, which read the
// database as they would at a poll. The database stays the truth: a lost ring
// costs only the poll interval (Host's poll_ms), never a wrong table.
#include <string>

namespace atl::host {

/// The doorbell's file name inside the data directory.
inline constexpr const char* deploy_bell_file = "deploy.bell";

/// Rings the bell of the server (if any) running on `data`. Never throws: a
/// bell that cannot be written leaves the server to its poll.
void ring_deploy_bell(const std::string& data) noexcept;

/// The server's side: an inotify watch on `data` for the bell.
class DeployBell {
 public:
  /// Throws std::system_error if inotify cannot watch `data`.
  explicit DeployBell(const std::string& data);
  ~DeployBell();
  DeployBell(const DeployBell&) = delete;
  DeployBell& operator=(const DeployBell&) = delete;

  /// A non-blocking descriptor, readable when the bell may have rung.
  int fd() const noexcept { return fd_; }
  /// Reads every pending event; true if the bell rang among them.
  bool drain() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace atl::host
