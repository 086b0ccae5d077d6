// domain_fuzz: arbitrary bytes through host::normalise_domain(), which reads
// the custom domains the admin API takes (and, through libidn2, decodes
// international names). It may refuse a name only with
// std::invalid_argument. What it accepts must be canonical: normalising it
// again gives it back unchanged, and it holds only a-z, 0-9, '-', '.' and a
// leading "*.", with labels of 1-63 bytes and at most 253 bytes in all.
// Anything else is a crash.
//
//   cmake --preset fuzz && cmake --build build/fuzz && tests/fuzz/run.sh 60
#include <atoll/host/database.hpp>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string out;
  try {
    out = atl::host::normalise_domain(in, "localhost");
  } catch (const std::invalid_argument&) {
    return 0;
  }
  std::string_view name = out;
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) std::abort();
  std::size_t label = 0;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) std::abort();
    label = c == '.' ? 0 : label + 1;
    if (label > 63) std::abort();
  }
  if (name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos)
    std::abort();
  if (atl::host::normalise_domain(out, "localhost") != out) std::abort();  // canonical
  return 0;
}
