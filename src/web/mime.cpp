#include <atoll/web/mime.hpp>

#include <atoll/http/headers.hpp>

#include <array>
#include <utility>

namespace atl::web {

namespace {
constexpr std::array<std::pair<std::string_view, std::string_view>, 44> types{{
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"mov", "video/quicktime"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"toml", "application/toml"},
    {"ics", "text/calendar; charset=utf-8"},
    {"vtt", "text/vtt; charset=utf-8"},
}};
}  // namespace

std::string_view mime_type(std::string_view path) noexcept {
  auto slash = path.rfind('/');
  auto dot = path.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "application/octet-stream";
  std::string_view ext = path.substr(dot + 1);
  for (const auto& [e, t] : types)
    if (http::iequals(e, ext)) return t;
  return "application/octet-stream";
}

bool is_compressible(std::string_view mime) noexcept {
  return mime.starts_with("text/") || mime.starts_with("application/json") ||
         mime.starts_with("application/xml") || mime.starts_with("application/manifest") ||
         mime.starts_with("application/rss") || mime.starts_with("application/atom") ||
         mime.starts_with("image/svg") || mime.starts_with("application/wasm") ||
         mime.starts_with("application/yaml") || mime.starts_with("application/toml");
}

}  // namespace atl::web
