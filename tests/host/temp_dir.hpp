#pragma once
// A private directory for one test, removed with everything in it when the
// test ends (so a failed assertion leaves nothing behind in $TMPDIR).
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "support/test_support.hpp"

namespace atl::test {

class TempDir {
 public:
  TempDir() : path_(make_temp_dir()) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::string operator/(std::string_view rel) const { return path_ + "/" + std::string(rel); }

  /// Writes `bytes` to `rel`, creating its directories.
  void write(std::string_view rel, std::string_view bytes) const {
    std::filesystem::path p = *this / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  }

 private:
  std::string path_;
};

/// The whole content of a file ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace atl::test
