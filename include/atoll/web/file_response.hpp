#pragma once
// One file responder: what static_files and the site host answer a GET or
// HEAD for a stored file with, so both speak HTTP's file semantics alike.
//
//   - a precompressed variant chosen by Accept-Encoding (negotiate_coding),
//     with Vary, and the identity file whenever a Range is asked for;
//   - preconditions in RFC 9110 §13.2.2's order: If-Match (strong
//     comparison) and If-Unmodified-Since → 412; If-None-Match (weak
//     comparison, an exact entity-tag list match) and, without it,
//     If-Modified-Since → 304;
//   - Range: one range → 206 with Content-Range, several → 206
//     multipart/byteranges, none satisfiable → 416; If-Range (a strong ETag
//     or the exact Last-Modified date) decides whether a Range is honoured;
//   - the body by send() from memory or send_file() from a descriptor (HEAD
//     sends the headers alone, through Conn).
//
// It allocates nothing for a plain 200 or 304 from memory or a descriptor:
// the header blocks are built once, by whoever caches the file.
#include <atoll/http/conn.hpp>
#include <atoll/http/headers.hpp>
#include <atoll/runtime/task.hpp>
#include <atoll/web/content_coding.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace atl::web {

/// One stored form of a file: the identity bytes or a precompressed variant.
struct FileVariant {
  int fd = -1;            // read with sendfile when not in memory
  std::string_view data;  // the whole variant, when `in_memory`
  bool in_memory = false;
  std::uint64_t size = 0;
  std::string_view etag;  // strong and quoted: "\"...\""
  // What every answer from this variant carries (Content-Type, ETag,
  // Last-Modified, Cache-Control, Content-Encoding or Accept-Ranges).
  const http::HeaderBlock* headers = nullptr;
  explicit operator bool() const noexcept { return fd >= 0 || in_memory; }
};

/// A variant as a cache keeps it: its bytes (small files) or an open
/// descriptor, its ETag and its prepared headers. The cache closes `fd`.
struct CachedVariant {
  int fd = -1;
  std::uint64_t size = 0;
  std::string data;  // the whole variant, when small enough to keep
  bool in_memory = false;
  std::string etag;
  // Content-Type, ETag, Last-Modified, Cache-Control and Content-Encoding or
  // Accept-Ranges: what every answer from this variant carries, made once.
  http::HeaderBlock headers;
  explicit operator bool() const noexcept { return fd >= 0 || in_memory; }
  FileVariant view() const noexcept {
    return {.fd = fd,
            .data = data,
            .in_memory = in_memory,
            .size = size,
            .etag = etag,
            .headers = &headers};
  }
};

struct FileResponse {
  /// [0] the identity file, then one per ContentCoding (1 + int(coding));
  /// empty ones are not offered.
  const FileVariant* variants[4] = {};
  std::string_view mime;           // each part's type in multipart/byteranges
  std::int64_t mtime = -1;         // seconds since the epoch; -1: no dates compared
  std::string_view last_modified;  // the Last-Modified value sent, for If-Range
  std::size_t max_ranges = 16;     // more is an amplification attack, not a client
  /// Called with the response headers once the variant's are in: the site
  /// host's per-path header rules. (A capture of two references fits
  /// std::function's inline buffer: no allocation.)
  const std::function<void(http::ResponseHeaders&)>* decorate = nullptr;
};

/// A file as a cache keeps it: its variants (identity, then one per
/// ContentCoding; descriptors closed with it), its type and dates, and the
/// FileResponse that views them, made once by ready() so a request builds
/// nothing. It does not move: the response points into it.
struct CachedFile {
  CachedVariant variants[4];
  std::string mime;
  std::int64_t mtime = -1;
  std::string last_modified;
  FileResponse response;

  CachedFile() = default;
  CachedFile(const CachedFile&) = delete;
  CachedFile& operator=(const CachedFile&) = delete;
  ~CachedFile();
  /// Points `response` at the variants that are there; call once they are.
  void ready(std::size_t max_ranges = 16) noexcept;

 private:
  FileVariant views_[4];
};

/// Answers `c` with the file at `status` (200; a page served for another
/// path, such as a 404 page, passes its own status and gets neither
/// preconditions nor ranges). The checks and headers are done when this
/// returns (`decorate` is called then); the Task sends, reading the
/// variants' bytes, which must live until it is done.
Task<> send_file_response(http::Conn& c, const FileResponse& file, int status = 200);

/// Whether an If-Match / If-None-Match value lists `etag` (quoted, strong):
/// an exact entity-tag match after parsing the list ("*" matches any), by
/// strong comparison (W/ tags never match) or weak (W/ ignored). A list that
/// does not parse matches nothing.
bool etag_list_matches(std::string_view list, std::string_view etag, bool weak) noexcept;

}  // namespace atl::web
