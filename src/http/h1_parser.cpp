// HTTP/1.1 requests through llhttp: the head (callbacks, then the checks
// llhttp does not make) and the body.
#include "http/h1_detail.hpp"

#include <atoll/http/date.hpp>
#include <atoll/http/exchange.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/rate_limit.hpp>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace atl::http {

using namespace h1;

namespace {
Http1Conn& self(llhttp_t* p) { return *static_cast<Http1Conn*>(p->data); }
}  // namespace

namespace h1 {

// What is wrong with the chunked framing of `body`, the start of a chunked
// body (as much as has arrived), or nullptr if nothing is wrong yet. Only
// what RFC 9112 §7.1 forbids outright is refused (llhttp refuses it too,
// later); an incomplete chunk is not an error.
const char* chunked_framing_error(std::string_view body) noexcept {
  std::size_t i = 0;
  for (;;) {
    std::size_t eol = body.find('\n', i);
    if (eol == std::string_view::npos) return nullptr;  // the size line is still coming
    if (eol == i || body[eol - 1] != '\r') return "a chunk-size line must end in CRLF";
    std::string_view line = body.substr(i, eol - 1 - i);
    std::size_t digits = 0, significant = 0;
    std::uint64_t size = 0;
    while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
      char ch = line[digits];
      int v = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
      if (significant || v) ++significant;
      if (significant > 15) return "the chunk size is too large";
      size = size * 16 + std::uint64_t(v);
      ++digits;
    }
    if (digits == 0) return "a chunk size must be hexadecimal digits";
    if (digits < line.size() && line[digits] != ';' && line[digits] != ' ' && line[digits] != '\t')
      return "a chunk size must be hexadecimal digits";
    if (size == 0) return nullptr;  // the last chunk: trailers follow
    std::size_t data = eol + 1;
    if (body.size() - data < size + 2) return nullptr;  // the chunk is still coming
    if (body.substr(data + size, 2) != "\r\n") return "chunk data must end in CRLF";
    i = data + size + 2;
  }
}

}  // namespace h1

// --- parser callbacks ---------------------------------------------------------
// The whole head is handed to llhttp in one call, so each element arrives in
// one callback as a view into the read buffer: nothing is copied.

const llhttp_settings_t& Http1Conn::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_url = &Http1Conn::on_url;
    st.on_header_field = &Http1Conn::on_header_field;
    st.on_header_value = &Http1Conn::on_header_value;
    st.on_header_value_complete = &Http1Conn::on_header_value_complete;
    st.on_headers_complete = &Http1Conn::on_headers_complete;
    st.on_body = &Http1Conn::on_body;
    st.on_message_complete = &Http1Conn::on_message_complete;
    return st;
  }();
  return s;
}

int Http1Conn::on_url(llhttp_t* p, const char* at, std::size_t len) {
  self(p).target_ = {at, len};
  return 0;
}

// Trailer fields (after a chunked body) come through the same callbacks. They
// are dropped: RFC 9110 §6.5.1 forbids merging them into the header section,
// where a handler would take a trailer for a header the client never sent.

int Http1Conn::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto& c = self(p);
  if (c.in_trailers_) return 0;
  c.cur_name_ = {at, len};
  c.cur_value_ = {};
  return 0;
}

int Http1Conn::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto& c = self(p);
  if (c.in_trailers_) return 0;
  // A value continued on a line that starts with a space or tab (obs-fold)
  // reaches us as a second span, and llhttp has already acted on the whole
  // (a folded "Transfer-Encoding:\r\n chunked" counts as chunked). RFC 9112
  // §5.2 allows rejecting it; that is the only safe choice. The whole head is
  // in one buffer and every value is preceded by its "name:", so the scan
  // back stays inside the head. (An empty value arrives as an empty span
  // placed after its line's end: nothing to check there.)
  const char* q = at;
  while (len && (q[-1] == ' ' || q[-1] == '\t')) --q;
  if (len && q[-1] == '\n') {
    c.head_error_ = {400, "header '" + std::string(c.cur_name_.substr(0, 64)) +
                              "' is folded over several lines (obsolete, RFC 9112 §5.2)"};
    return HPE_USER;
  }
  c.cur_value_ = {at, len};
  return 0;
}

int Http1Conn::on_header_value_complete(llhttp_t* p) {
  auto& c = self(p);
  if (c.in_trailers_) return 0;
  std::string_view v = c.cur_value_;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (c.headers_.size() >= c.opt_.max_headers) {
    c.head_error_ = {431,
                     "too many header fields (limit " + std::to_string(c.opt_.max_headers) + ")"};
    return HPE_USER;
  }
  if (c.cur_name_.size() + v.size() > c.opt_.max_header_line) {
    c.head_error_ = {431, "header field '" + std::string(c.cur_name_.substr(0, 64)) +
                              "' is too long (limit " + std::to_string(c.opt_.max_header_line) +
                              " bytes)"};
    return HPE_USER;
  }
  c.headers_.add(c.cur_name_, v);
  return 0;
}

int Http1Conn::on_headers_complete(llhttp_t* p) {
  auto& c = self(p);
  c.method_ = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  c.http_minor_ = p->http_minor;
  c.version_ = p->http_major != 1 ? "HTTP/?" : p->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  c.keep_alive_ = llhttp_should_keep_alive(p) != 0;
  c.chunked_ = (p->flags & F_CHUNKED) != 0;
  if (p->flags & F_CONTENT_LENGTH) c.content_length_ = p->content_length;
  c.has_body_ = c.chunked_ || (c.content_length_ && *c.content_length_ > 0);
  c.body_done_ = !c.has_body_;
  c.upgrade_request_ = p->upgrade != 0;
  c.in_trailers_ = true;  // any field from now on is a trailer
  return 0;
}

int Http1Conn::on_body(llhttp_t* p, const char* at, std::size_t len) {
  // De-chunk in place: decoded bytes never outrun the raw ones, so moving
  // them down never overwrites input the parser has yet to read.
  auto& c = self(p);
  if (!c.body_cursor_) {  // body bytes inside the head: see parse_head()
    c.head_error_ = {400, "malformed request: body bytes inside the head"};
    return HPE_USER;
  }
  if (c.body_cursor_ != at) std::memmove(c.body_cursor_, at, len);
  c.body_cursor_ += len;
  return 0;
}

int Http1Conn::on_message_complete(llhttp_t* p) {
  self(p).body_done_ = true;
  return HPE_PAUSED;  // stop here: a pipelined request waits its turn
}

bool Http1Conn::parse_head(std::size_t head_len) {
  const char* begin = in_.data() + in_start_;
  // llhttp also ends a line at a bare LF, so in "…\r\n\nX…" it would see the
  // head end before the CRLFCRLF read_head() found, and take the rest for
  // body bytes (written through a cursor that only read_body_chunk() sets:
  // a crash) or for the next request. Both must agree on where the head
  // ends, so a bare LF is refused (RFC 9112 §2.2 allows that).
  std::string_view head(begin, head_len);
  for (std::size_t lf = head.find('\n'); lf != std::string_view::npos;
       lf = head.find('\n', lf + 1)) {
    if (lf == 0 || head[lf - 1] != '\r') {
      in_start_ += head_len;
      head_error_ = {400, std::string(bare_lf)};
      return false;
    }
  }
  // RFC 9110 §2.5: a request with a higher minor version of HTTP/1 is
  // served as the highest we support, HTTP/1.1. llhttp 8 refuses
  // "HTTP/1.2", so that one digit of the request line becomes '1'.
  if (std::size_t eol = head.find("\r\n"); eol >= 9 && eol != std::string_view::npos &&
                                           head.substr(eol - 9, 8) == " HTTP/1." &&
                                           head[eol - 1] >= '2' && head[eol - 1] <= '9')
    in_.data()[in_start_ + eol - 1] = '1';
  body_cursor_ = nullptr;  // on_body() refuses body bytes inside the head
  llhttp_errno_t err = llhttp_execute(&parser_, begin, head_len);
  in_start_ += head_len;
  body_floor_ = std::int64_t(in_start_);
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    paused_ = true;
    if (llhttp_get_error_pos(&parser_) != begin + head_len) {
      head_error_ = {400, "malformed request: the head ends before its blank line"};
      return false;
    }
  } else if (head_error_.status) {
    // A callback refused the head (431) and set the reason. llhttp reports
    // that as the callback's own error code (HPE_CB_*), never HPE_USER.
    return false;
  } else if (err != HPE_OK) {
    head_error_ = {400, std::string("malformed request: ") + llhttp_get_error_reason(&parser_)};
    return false;
  }
  return finish_head();
}

bool Http1Conn::finish_head() {
  if (version_ == "HTTP/?") {
    head_error_ = {505, "only HTTP/1.0 and HTTP/1.1 are served here"};
    return false;
  }
  head_ = method_ == "HEAD";
  // Framing: RFC 9112 §6.1 — Transfer-Encoding in HTTP/1.0 is faulty framing.
  if (http_minor_ == 0 && headers_.has("transfer-encoding")) {
    head_error_ = {400, "Transfer-Encoding is not allowed in HTTP/1.0"};
    return false;
  }
  // Host: exactly one on HTTP/1.1 (RFC 9112 §3.2).
  std::size_t hosts = headers_.count("host");
  if ((http_minor_ >= 1 && hosts != 1) || hosts > 1) {
    head_error_ = {
        400, hosts ? "more than one Host header" : "missing Host header (required in HTTP/1.1)"};
    return false;
  }
  host_ = headers_.get("host");
  if (auto colon = host_.rfind(':');
      colon != std::string_view::npos && host_.find(']', colon) == std::string_view::npos)
    host_ = host_.substr(0, colon);
  // The target: origin-form, absolute-form, or "*".
  std::string_view t = target_;
  if (t.empty()) {
    head_error_ = {400, "empty request target"};
    return false;
  }
  if (t.front() != '/') {
    if (t == "*") {
      raw_path_ = t;
      path_ = "*";
      return true;
    }
    auto scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos) {
      head_error_ = {400, "request target must start with '/' (CONNECT is not supported)"};
      return false;
    }
    auto authority = t.substr(scheme_end + 3);
    auto slash = authority.find('/');
    host_ =
        authority.substr(0, slash == std::string_view::npos ? authority.size()
                                                            : std::min(slash, authority.find('?')));
    if (auto colon = host_.rfind(':'); colon != std::string_view::npos)
      host_ = host_.substr(0, colon);
    t = slash == std::string_view::npos ? std::string_view("/") : authority.substr(slash);
  }
  auto q = t.find('?');
  raw_path_ = t.substr(0, q);
  if (q != std::string_view::npos) query_ = t.substr(q + 1);
  if (raw_path_.find('%') == std::string_view::npos) {
    path_.assign(raw_path_);
  } else {
    auto decoded = percent_decode_path(raw_path_);
    if (!decoded) {
      head_error_ = {400, "bad percent-encoding in the path"};
      return false;
    }
    path_ = std::move(*decoded);
  }
  if (auto expect = headers_.get("expect"); !expect.empty()) {
    if (!iequals(expect, "100-continue")) {
      head_error_ = {417, "only 'Expect: 100-continue' is supported"};
      return false;
    }
    expect_continue_ = http_minor_ >= 1;
  }
  body_limit_ = opt_.max_body;
  // A chunked body whose framing is already wrong in what has arrived is a
  // 400 now, before a handler answers 200 and the connection then breaks.
  if (chunked_) {
    if (const char* why =
            chunked_framing_error(std::string_view(in_.data() + in_start_, in_end_ - in_start_))) {
      head_error_ = {400, std::string("malformed chunked body: ") + why};
      close_ = true;
      return false;
    }
  }
  return true;
}

// --- the body -------------------------------------------------------------------

Task<std::span<const char>> Http1Conn::read_body_chunk() {
  if (!has_body_ || body_done_ || broken_) co_return std::span<const char>{};
  if (content_length_ && *content_length_ > body_limit_) {
    close_ = true;
    throw HttpError(413, "request body of " + std::to_string(*content_length_) +
                             " bytes is over the limit of " + std::to_string(body_limit_) +
                             " bytes");
  }
  if (expect_continue_ && !continue_sent_) {
    continue_sent_ = true;
    if (out_len_ + 25 > cap) {
      if (!co_await flush()) co_return std::span<const char>{};
    }
    put("HTTP/1.1 100 Continue\r\n\r\n");
    if (!co_await flush()) co_return std::span<const char>{};
  }
  if (!body_started_ms_) body_started_ms_ = sock_.loop_now();
  for (;;) {
    if (in_start_ < in_end_) {
      char* begin = in_.data() + in_start_;
      body_cursor_ = begin;
      llhttp_errno_t err = llhttp_execute(&parser_, begin, in_end_ - in_start_);
      std::size_t consumed = in_end_ - in_start_;
      if (err == HPE_PAUSED) {
        paused_ = true;
        consumed = std::size_t(llhttp_get_error_pos(&parser_) - begin);
      } else if (err != HPE_OK) {
        close_ = true;
        broken_ = false;
        throw HttpError(
            400, std::string("malformed request body: ") + llhttp_get_error_reason(&parser_));
      }
      in_start_ += consumed;
      std::size_t n = std::size_t(body_cursor_ - begin);
      body_received_ += n;
      if (body_received_ > body_limit_) {
        close_ = true;
        throw HttpError(
            413, "request body is over the limit of " + std::to_string(body_limit_) + " bytes");
      }
      if (n) co_return std::span<const char>(begin, n);
      if (body_done_) co_return std::span<const char>{};
    }
    if (in_start_ == in_end_) in_start_ = in_end_ = std::size_t(body_floor_);
    std::int64_t elapsed = sock_.loop_now() - body_started_ms_;
    if (opt_.min_upload_rate && elapsed > opt_.upload_grace_ms &&
        body_received_ * 1000 / std::uint64_t(elapsed) < opt_.min_upload_rate) {
      close_ = true;
      throw HttpError(408, "request body arrived slower than " +
                               std::to_string(opt_.min_upload_rate) + " bytes/s");
    }
    sock_.set_io_timeout(opt_.body_timeout_ms);
    bool ok = co_await fill(body_floor_);
    sock_.set_io_timeout(opt_.write_timeout_ms);
    if (!ok) {
      close_ = true;
      if (fill_error_ == ETIMEDOUT)
        throw HttpError(408,
                        "request body stalled for " + std::to_string(opt_.body_timeout_ms) + " ms");
      broken_ = fill_error_ != ENOBUFS;
      throw HttpError(400, "request body incomplete: the client closed the connection");
    }
  }
}

}  // namespace atl::http
