#pragma once
// Compression of dynamic responses: br, zstd or gzip, as the client accepts.
//
// The middleware adds a response filter (Conn::Filter) that compresses what
// the handler sends: send() bodies in one piece, streamed responses chunk by
// chunk, each chunk flushed so the client can decode it at once (server-sent
// events stay live). The coding is chosen by Accept-Encoding q-values; on a
// tie the server's order decides. What is left alone, and why:
//
//   - bodies under min_size (below);
//   - responses that already have a Content-Encoding (precompressed files);
//   - `Cache-Control: no-transform` (RFC 9111 §5.2.2.6 forbids it);
//   - 1xx, 204, 206 (a range of the identity body) and 304: no body to code;
//   - HEAD: no body goes out, so nothing to compress (Vary is still sent);
//   - types that do not shrink (images, video, archives): see compressible_type;
//   - send_file(): files are served as they are, or by static_files from
//     their precompressed siblings (file.br, file.zst, file.gz). Small files
//     that static_files keeps in memory go out by send(), and are
//     compressed here like any body when no sibling was chosen.
//
// A compressible response gets `Vary: Accept-Encoding` whether compressed or
// not, so a cache never hands a gzip body to a client that cannot read it.
// A strong ETag becomes weak when the body is compressed: the bytes differ.
//
// | option             | default          | why                                                |
// |--------------------|------------------|----------------------------------------------------|
// | min_size           | 1 KiB            | below it codec framing and CPU cost more than the  |
// |                    |                  | few bytes saved; most fit one packet anyway        |
// | codings            | {br, zstd, gzip} | server preference on equal q: best ratio first     |
// | gzip_level         | 6                | zlib's default: nearly level 9's ratio, far less CPU|
// | brotli_quality     | 4                | on the fly: smaller than gzip -6 at similar speed; |
// |                    |                  | 11 is for precompressing, ~100x slower             |
// | zstd_level         | 3                | zstd's default; at most 19, so the window stays    |
// |                    |                  | within the 8 MiB browsers accept                   |
// | stream_window_bits | 18 (256 KiB)     | br/zstd window of a streamed response: bounds the  |
// |                    |                  | memory an open stream (an SSE feed) holds for hours|
// | compressible       | compressible_type| which Content-Types are worth compressing          |
#include <atoll/web/content_coding.hpp>
#include <atoll/web/pipeline.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace atl::web {

/// True for media types that shrink: text/*, JSON (and +json), JavaScript,
/// XML (and +xml), SVG, WebAssembly, YAML, TOML. Case-insensitive, parameters
/// ignored. An empty (unknown) type is not compressed.
bool compressible_type(std::string_view content_type) noexcept;

struct CompressionOptions {
  std::size_t min_size = 1024;
  std::vector<ContentCoding> codings = {ContentCoding::br, ContentCoding::zstd,
                                        ContentCoding::gzip};
  int gzip_level = 6;
  int brotli_quality = 4;
  int zstd_level = 3;
  int stream_window_bits = 18;
  std::function<bool(std::string_view)> compressible = compressible_type;
};

/// The compression middleware. Throws std::invalid_argument on a level or
/// window outside its codec's range (gzip 1–9, brotli 0–11, zstd 1–19,
/// window 10–23).
Middleware compression(CompressionOptions options = {});

}  // namespace atl::web
