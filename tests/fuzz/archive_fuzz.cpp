// archive_fuzz: arbitrary bytes through host::read_tar_gz(), the reader of
// the .tar.gz uploads that the admin API takes.
//
// An input that starts with the gzip magic goes in as it is (gzip framing,
// truncation, bombs). Anything else is taken as an uncompressed tar and
// gzipped here first (stored, not compressed: cheap), so that mutations reach
// the tar parser instead of dying at gzip's CRC check. read_tar_gz() may
// refuse an archive only with std::invalid_argument or std::length_error;
// what it accepts must stay within the unpacking limit, and every path it
// returns must pass the publisher's own rules (validate_publish_path) and,
// checked again here, be relative with no "." or ".." segment, no NUL, no
// backslash and no control byte. Anything else is a crash.
//
//   cmake --preset fuzz && cmake --build build/fuzz && tests/fuzz/run.sh 60
#include <atoll/host/publish.hpp>

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "host/archive.hpp"

namespace {

// Small, so gzip bombs of a few KiB reach the limit quickly.
constexpr std::size_t max_bytes = 256 * 1024;

std::string gzip_stored(std::string_view tar) {
  z_stream z{};
  if (deflateInit2(&z, Z_NO_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    std::abort();
  std::string out(deflateBound(&z, uLong(tar.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(tar.data()));
  z.avail_in = uInt(tar.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The invariants of a path that is safe to write under a site's root,
// independent of validate_publish_path (which must agree).
bool safe_relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/') return false;
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f || c == '\\') return false;
  std::size_t pos = 0;
  for (;;) {
    std::size_t slash = p.find('/', pos);
    std::string_view seg = p.substr(pos, slash - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (slash == std::string_view::npos) return true;
    pos = slash + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string archive;
  if (input.starts_with("\x1f\x8b"))
    archive = input;
  else
    archive = gzip_stored(input);

  std::vector<atl::host::PublishFile> files;
  try {
    files = atl::host::read_tar_gz(archive, max_bytes);
  } catch (const std::invalid_argument&) {
    return 0;  // refused, with a reason: fine
  } catch (const std::length_error&) {
    return 0;  // over max_bytes: fine
  }
  std::size_t total = 0;
  for (const auto& f : files) {
    total += f.bytes.size();
    if (!safe_relative_path(f.path)) __builtin_trap();
    try {
      atl::host::validate_publish_path(f.path);
    } catch (const std::invalid_argument&) {
      __builtin_trap();  // the archive reader let through a path the publisher refuses
    }
  }
  if (total > max_bytes) __builtin_trap();
  return 0;
}
