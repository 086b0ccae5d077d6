#include <atoll/web/compression.hpp>

#include "web/compression_codecs.hpp"

#include <array>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

namespace atl::web {

namespace {

using http::iequals;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

// True if the comma-separated header `value` holds `token` (directive names
// like "no-transform"; a directive's "=value" is ignored).
bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = trim(value.substr(0, comma));
    item = trim(item.substr(0, item.find('=')));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// An RFC 9110 qvalue: "0", "0.5", "1", "1.000". nullopt when malformed.
std::optional<int> parse_qvalue(std::string_view v) noexcept {
  if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  int thousandths = (v[0] - '0') * 1000;
  if (v.size() > 1) {
    if (v[1] != '.') return std::nullopt;
    int scale = 100;
    for (char c : v.substr(2)) {
      if (c < '0' || c > '9') return std::nullopt;
      thousandths += (c - '0') * scale;
      scale /= 10;
    }
  }
  if (thousandths > 1000) return std::nullopt;
  return thousandths;
}

// The response filter (Conn::Filter) the middleware adds for the rest of
// the pipeline: send() bodies compressed in one piece, streams piece by
// piece with a flush after each, files left alone.
class CompressionFilter final : public Conn::Filter {
 public:
  explicit CompressionFilter(const CompressionOptions& options) : opt_(options) {}

  bool whole(Conn& c, int status, std::string_view body, std::string& out) override {
    auto coding = choose(c, status, body.size(), false);
    if (!coding) return false;
    codec::compress(*coding, body, opt_, out);
    // It grew (already compressed data under a text type): send it as is.
    if (out.size() >= body.size()) return false;
    mark_encoded(c, *coding);
    return true;
  }

  bool begin(Conn& c, int status) override {
    auto coding = choose(c, status, 0, true);
    if (!coding) return false;
    stream_ = codec::make_stream_encoder(*coding, opt_);
    mark_encoded(c, *coding);
    return true;
  }

  void write(std::string_view in, bool last, std::string& out) override {
    if (!stream_) return;
    if (!in.empty() || last) stream_->write(in, last, out);
    if (last) stream_.reset();
  }

 private:
  // The coding for this response, or nullopt; adds Vary when the response is
  // one that would be compressed for a client that asked.
  std::optional<ContentCoding> choose(Conn& c, int status, std::size_t size, bool streamed) {
    auto& h = c.response_headers();
    if (status < 200 || status == 204 || status == 206 || status == 304) return std::nullopt;
    if (h.has("Content-Encoding") || h.has("Content-Range")) return std::nullopt;
    if (has_token(h.get("Cache-Control"), "no-transform")) return std::nullopt;
    if (!opt_.compressible || !opt_.compressible(h.get("Content-Type"))) return std::nullopt;
    if (!streamed && size < opt_.min_size) return std::nullopt;
    h.append_token("Vary", "Accept-Encoding");
    if (c.is_head()) return std::nullopt;
    return negotiate_coding(c.header("accept-encoding"), opt_.codings);
  }

  static void mark_encoded(Conn& c, ContentCoding coding) {
    auto& h = c.response_headers();
    h.set("Content-Encoding", coding_name(coding));
    h.remove("Content-Length");
    std::string_view etag = h.get("ETag");
    if (!etag.empty() && !etag.starts_with("W/")) h.set("ETag", "W/" + std::string(etag));
  }

  const CompressionOptions& opt_;
  std::unique_ptr<codec::StreamEncoder> stream_;
};

void check_range(int value, int low, int high, const char* what) {
  if (value < low || value > high)
    throw std::invalid_argument(std::string("compression: ") + what + " must be in " +
                                std::to_string(low) + ".." + std::to_string(high) + ", not " +
                                std::to_string(value));
}

}  // namespace

std::string_view coding_name(ContentCoding coding) noexcept {
  switch (coding) {
    case ContentCoding::br:
      return "br";
    case ContentCoding::zstd:
      return "zstd";
    case ContentCoding::gzip:
      return "gzip";
  }
  return "identity";
}

bool compressible_type(std::string_view content_type) noexcept {
  std::string_view t = trim(content_type.substr(0, content_type.find(';')));
  if (t.empty()) return false;
  if (istarts_with(t, "text/")) return true;
  if (iends_with(t, "+json") || iends_with(t, "+xml"))
    return true;  // application/ld+json, image/svg+xml, …
  static constexpr std::array<std::string_view, 9> types = {
      "application/json",       "application/javascript", "application/x-javascript",
      "application/ecmascript", "application/xml",        "application/wasm",
      "application/yaml",       "application/toml",       "application/x-ndjson"};
  for (auto known : types)
    if (iequals(t, known)) return true;
  return false;
}

std::optional<ContentCoding> negotiate_coding(std::string_view accept_encoding,
                                              std::span<const ContentCoding> offered) noexcept {
  // q in thousandths for each offered coding: -1 = not named.
  std::array<int, 3> named = {-1, -1, -1};
  int star = -1;
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    std::size_t semi = item.find(';');
    std::string_view name = trim(item.substr(0, semi));
    if (name.empty()) continue;
    int q = 1000;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      for (;;) {
        std::size_t next = params.find(';');
        std::string_view param = trim(params.substr(0, next));
        std::size_t eq = param.find('=');
        if (eq != std::string_view::npos && iequals(trim(param.substr(0, eq)), "q"))
          q = parse_qvalue(trim(param.substr(eq + 1)))
                  .value_or(0);  // a bad weight refuses: never guess yes
        if (next == std::string_view::npos) break;
        params.remove_prefix(next + 1);
      }
    }
    if (name == "*")
      star = q;
    else if (iequals(name, "br"))
      named[int(ContentCoding::br)] = q;
    else if (iequals(name, "zstd"))
      named[int(ContentCoding::zstd)] = q;
    else if (iequals(name, "gzip") || iequals(name, "x-gzip"))
      named[int(ContentCoding::gzip)] = q;
  }
  std::optional<ContentCoding> best;
  int best_q = 0;
  for (ContentCoding c : offered) {
    int q = named[int(c)] >= 0 ? named[int(c)] : star;
    if (q > best_q) {  // strictly greater: on a tie the earlier (preferred) one stays
      best = c;
      best_q = q;
    }
  }
  return best;
}

Middleware compression(CompressionOptions options) {
  check_range(options.gzip_level, 1, 9, "gzip_level");
  check_range(options.brotli_quality, 0, 11, "brotli_quality");
  check_range(options.zstd_level, 1, 19, "zstd_level");
  check_range(options.stream_window_bits, 10, 23, "stream_window_bits");
  auto opt = std::make_shared<const CompressionOptions>(std::move(options));
  return [opt](Conn& c, const App& next) -> Task<> {
    auto keep = opt;  // the frame holds the options, whatever happens to the closure
    CompressionFilter filter(*keep);
    Conn::ScopedFilter scoped(c, filter);
    co_await next(c);
    // A stream the handler left open is ended here, while the filter can
    // still finish the coded stream.
    if (c.streaming()) co_await c.end_stream();
  };
}

}  // namespace atl::web
