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

// The Conn the rest of the pipeline sees: request and per-request state are
// copied from the wrapped Conn; send() and streams are compressed on the way
// to it; everything else is passed through.
class CompressingConn final : public Conn {
 public:
  CompressingConn(Conn& inner, const CompressionOptions& options) : inner_(inner), opt_(options) {
    copy_request_from(inner);
  }

  Task<std::span<const char>> read_body_chunk() override {
    inner_.set_body_limit(body_limit_);  // a handler may have changed it on this side
    return inner_.read_body_chunk();
  }
  bool draining() const noexcept override { return inner_.draining(); }

  Task<> send(int status, std::string_view body) override {
    auto coding = choose(status, body.size(), false);
    if (coding) {
      std::string packed;
      codec::compress(*coding, body, opt_, packed);
      if (packed.size() < body.size()) {
        mark_encoded(*coding);
        hand_over();
        co_await inner_.send(status, packed);
        take_back();
        co_return;
      }
      // It grew (already compressed data under a text type): send it as is.
    }
    hand_over();
    co_await inner_.send(status, body);
    take_back();
  }

  Task<> send_file(int status, int fd, off_t offset, std::uint64_t length) override {
    hand_over();
    co_await inner_.send_file(status, fd, offset, length);
    take_back();
  }

  Task<> begin_stream(int status) override {
    if (auto coding = choose(status, 0, true)) {
      stream_ = codec::make_stream_encoder(*coding, opt_);
      mark_encoded(*coding);
    }
    hand_over();
    co_await inner_.begin_stream(status);
    take_back();
  }

  Task<> write_chunk(std::string_view data) override {
    if (!stream_) {
      co_await inner_.write_chunk(data);
    } else if (!data.empty()) {
      out_.clear();
      stream_->write(data, false, out_);
      if (!out_.empty()) co_await inner_.write_chunk(out_);
    }
    take_back();
  }

  Task<> end_stream() override {
    if (stream_) {
      out_.clear();
      stream_->write({}, true, out_);
      stream_.reset();
      if (!out_.empty()) co_await inner_.write_chunk(out_);
    }
    co_await inner_.end_stream();
    take_back();
  }

  Task<> inform(int status, const std::vector<http::Header>& headers) override {
    return inner_.inform(status, headers);
  }

  Task<Upgraded> upgrade(std::string_view protocol,
                         const std::vector<http::Header>& headers) override {
    hand_over();
    auto upgraded = co_await inner_.upgrade(protocol, headers);
    take_back();
    co_return upgraded;
  }

  using Conn::send;
  using Conn::send_file;

  /// After the handler: ends a stream it left open (so the coded stream is
  /// complete), and hands the per-request state back.
  Task<> finish() {
    if (started_ && !sent_ && inner_.response_started() && !inner_.response_sent())
      co_await end_stream();
  }
  void give_back() const { copy_state_back_to(inner_); }

 private:
  // The coding for this response, or nullopt; adds Vary when the response is
  // one that would be compressed for a client that asked.
  std::optional<ContentCoding> choose(int status, std::size_t size, bool streamed) {
    if (status < 200 || status == 204 || status == 206 || status == 304) return std::nullopt;
    if (response_headers_.has("Content-Encoding") || response_headers_.has("Content-Range"))
      return std::nullopt;
    if (has_token(response_headers_.get("Cache-Control"), "no-transform")) return std::nullopt;
    if (!opt_.compressible || !opt_.compressible(response_headers_.get("Content-Type")))
      return std::nullopt;
    if (!streamed && size < opt_.min_size) return std::nullopt;
    response_headers_.append_token("Vary", "Accept-Encoding");
    if (head_) return std::nullopt;
    return negotiate_coding(headers_.get("accept-encoding"), opt_.codings);
  }

  void mark_encoded(ContentCoding coding) {
    response_headers_.set("Content-Encoding", coding_name(coding));
    response_headers_.remove("Content-Length");
    std::string_view etag = response_headers_.get("ETag");
    if (!etag.empty() && !etag.starts_with("W/"))
      response_headers_.set("ETag", "W/" + std::string(etag));
  }

  // The response headers and flags go to the wrapped Conn before it writes...
  void hand_over() {
    inner_.response_headers() = response_headers_;
    if (close_) inner_.close_after_response();
  }
  // ...and what it did comes back, for the handler and middleware in here.
  void take_back() noexcept {
    status_ = inner_.status();
    started_ = inner_.response_started();
    sent_ = inner_.response_sent();
    bytes_sent_ = inner_.bytes_sent();
  }

  Conn& inner_;
  const CompressionOptions& opt_;
  std::unique_ptr<codec::StreamEncoder> stream_;
  std::string out_;
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
    CompressingConn wrapped(c, *keep);
    std::exception_ptr failure;
    try {
      co_await next(wrapped);
      co_await wrapped.finish();
    } catch (...) {
      failure = std::current_exception();
    }
    wrapped.give_back();
    if (failure) std::rethrow_exception(failure);
  };
}

}  // namespace atl::web
