// DeployBell: a command's ring reaches the server's watch; other writes in
// the data directory do not ring it.
#include <atoll/host/deploy_bell.hpp>

#include <gtest/gtest.h>
#include <poll.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "host/temp_dir.hpp"

namespace {

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(DeployBell, ARingMakesTheWatchReadableAndDrainSaysSo) {
  atl::test::TempDir data;
  atl::host::DeployBell bell(data.path());
  EXPECT_FALSE(bell.drain()) << "nothing rang yet";
  atl::host::ring_deploy_bell(data.path());
  ASSERT_TRUE(readable(bell.fd(), 5000));
  EXPECT_TRUE(bell.drain());
  EXPECT_FALSE(bell.drain()) << "one ring is drained once";
}

TEST(DeployBell, OtherFilesInTheDataDirectoryDoNotRing) {
  atl::test::TempDir data;
  atl::host::DeployBell bell(data.path());
  data.write("atoll.db-wal", "pages");
  ASSERT_TRUE(readable(bell.fd(), 5000));  // inotify saw the write...
  EXPECT_FALSE(bell.drain());              // ...and it was not the bell
}

TEST(DeployBell, RingingADirectoryNoServerWatchesIsHarmless) {
  atl::host::ring_deploy_bell("/nonexistent/atoll-data");  // no throw
  atl::test::TempDir data;
  atl::host::ring_deploy_bell(data.path());
  atl::host::ring_deploy_bell(data.path());  // again: the file is reused
  EXPECT_TRUE(std::filesystem::is_regular_file(data / atl::host::deploy_bell_file));
  EXPECT_EQ(std::filesystem::file_size(data / atl::host::deploy_bell_file), 0u);
}

TEST(DeployBell, AMissingDataDirectoryIsAnErrorNamingIt) {
  try {
    atl::host::DeployBell bell("/nonexistent/atoll-data");
    FAIL() << "watched a directory that does not exist";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/atoll-data"), std::string::npos) << e.what();
  }
}

}  // namespace
