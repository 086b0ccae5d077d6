#pragma once
// Small request checks shared by the file-serving parts (static files here,
// the site host above): path safety and byte ranges. (Content codings:
// content_coding.hpp.)
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace atl::web {

/// True if `path` (decoded, starting with '/') has no "." or ".." segment,
/// no backslash and no NUL: it cannot name anything outside a root.
bool is_safe_path(std::string_view path) noexcept;

/// One satisfiable byte range of a representation, both ends inclusive.
struct ByteRange {
  std::uint64_t first, last;
};

/// Parses a Range header ("bytes=0-99,200-,-50") against a representation of
/// `size` bytes into `out`: every range ends up inside the file, and at most
/// `max` ranges are taken. False if the header is not a byte-range set it
/// understands or asks for more than `max` ranges (then the whole file is
/// served); true with an empty `out` if nothing was satisfiable (416).
bool parse_ranges(std::string_view header, std::uint64_t size, std::size_t max,
                  std::vector<ByteRange>& out);

}  // namespace atl::web
