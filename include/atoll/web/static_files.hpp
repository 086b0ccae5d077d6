#pragma once
// Static files from a directory, with an open-file cache.
//
// What a browser and a CDN expect (web/file_response.hpp, shared with the
// site host): strong ETag and Last-Modified, 304 on If-None-Match /
// If-Modified-Since, 412 on If-Match / If-Unmodified-Since, byte ranges
// (single, multipart, If-Range, 416), precompressed siblings (.br, .zst, .gz)
// chosen by Accept-Encoding with Vary, index files and the trailing-slash redirect. Never serves
// outside its root: "..", NUL and backslashes are refused, and a symlink that
// leads out of the root is refused when the file enters the cache (once, not
// on every request: see FACTS.md on per-request symlink checks).
//
// | option          | default        | why                                                   |
// |-----------------|----------------|-------------------------------------------------------|
// | root            | (required)     | the directory served                                  |
// | index_files     | {"index.html"} | what "/dir/" serves                                   |
// | precompressed   | true           | serve file.br / .zst / .gz when the client accepts it |
// | cache_control   | ""             | sent as is when set (e.g. "public, max-age=60")       |
// | cache_entries   | 4096 per loop  | bounds descriptors held open by the cache             |
// | inline_max      | 16 KiB         | smaller files are kept in memory: no pread per request|
// | inline_total    | 32 MiB per loop| bounds that memory                                    |
// | revalidate_ms   | 1000           | a replaced or deleted file is noticed within 1 s      |
// | max_ranges      | 16             | more ranges is an amplification attack, not a client  |
#include <atoll/web/pipeline.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atl::web {

struct StaticOptions {
  std::string root;
  std::vector<std::string> index_files = {"index.html"};
  bool precompressed = true;
  std::string cache_control;
  std::size_t cache_entries = 4096;
  std::size_t inline_max = 16 * 1024;
  std::size_t inline_total = 32 * 1024 * 1024;
  std::int64_t revalidate_ms = 1000;
  std::size_t max_ranges = 16;
};

/// Serves files under options.root; what it cannot find gets a 404.
/// Throws std::invalid_argument if the root is not a readable directory.
App static_files(StaticOptions options);
/// The same, as middleware: requests it does not serve (missing files, other
/// methods) go on to `next`.
Middleware static_middleware(StaticOptions options);

}  // namespace atl::web
