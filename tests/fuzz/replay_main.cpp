// Replays inputs through a fuzz target's LLVMFuzzerTestOneInput, without
// libFuzzer, so every earlier crash (tests/fuzz/regressions/NAME/) and every
// seed (tests/fuzz/corpus/NAME/) runs as a regression test in the ordinary
// release and sanitizer builds. A target reports a bug by aborting (or by a
// sanitizer report), which fails the test.
//   NAME_replay DIR_OR_FILE...
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
    return 1;
  }
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // An empty input still gets a valid pointer, as libFuzzer gives it.
  static const std::uint8_t empty = 0;
  LLVMFuzzerTestOneInput(
      bytes.empty() ? &empty : reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 0;
  int bad = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (!std::filesystem::exists(p)) continue;  // a target with no regressions yet
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::fprintf(stderr, "replay: %s\n", f.c_str());
      bad |= replay(f);
      ++count;
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  std::fprintf(stderr, "replay: %zu inputs, all passed\n", count);
  return bad;
}
