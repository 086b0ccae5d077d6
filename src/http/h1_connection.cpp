#include "http/h1_connection.hpp"

#include <atoll/http/date.hpp>
#include <atoll/http/exchange.hpp>

#include <atoll/runtime/log.hpp>
#include <atoll/runtime/rate_limit.hpp>

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace atl::http {

namespace {

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

// Requests the parser refuses (431, 414, smuggling attempts, bad paths) are
// logged, but a flood must not fill the disk: at most 20 lines a second in
// this process, then one line for those left out.
void log_refused(const net::PeerAddress& peer, int status, std::string_view reason) {
  static runtime::PerSecondLimit limit(20);
  long dropped = limit.take();
  if (dropped < 0) return;
  if (dropped > 0)
    log::warn("refused {} more request(s) without logging each (at most 20 lines a second)",
              dropped);
  log::warn("refused a request from {}: {} {}", peer.to_string(), status, reason);
}

constexpr std::string_view bare_lf =
    "a line of the request head ends in a bare LF (CRLF is required)";
constexpr std::size_t cap = net::Buffer::capacity;
// A response head must fit one output buffer; bigger header sets are refused
// with a 500 rather than sent in pieces.
constexpr std::size_t head_overhead = 160;
// Files up to this size are read into the output buffer (pread) so their
// bytes leave with the head in one write, pipelined answers too; larger ones
// go by sendfile.
constexpr std::size_t inline_file_limit = 16 * 1024;
// Lingering close: how long a closing connection keeps reading (and
// discarding) what the client still sends. Long enough for an upload refused
// with 413 to see its answer; short enough that a closing client holds its
// slot only briefly.
constexpr std::int64_t linger_ms = 2'000;

Http1Conn& self(llhttp_t* p) { return *static_cast<Http1Conn*>(p->data); }

char* put_uint(char* p, std::uint64_t v) { return std::to_chars(p, p + 20, v).ptr; }

}  // namespace

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

// --- reading the head ---------------------------------------------------------

Http1Conn::Http1Conn(net::Socket& socket, const HttpOptions& options)
    : sock_(socket), opt_(options) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
  peer_ = &sock_.peer();
  tls_ = sock_.is_tls();
  sock_.set_io_timeout(opt_.write_timeout_ms);
}

void Http1Conn::ensure_in() {
  if (!in_) in_ = net::Buffer::lease();
}

// Reads more bytes into in_; 0 on success, -1 at EOF, else an errno value.
// `floor` is where compaction may move data to: past the head while a body
// is read, so header views stay valid for the handler.
bool Http1Conn::make_room(std::int64_t floor) {
  ensure_in();
  std::size_t low = std::size_t(floor);
  if (in_end_ == cap && in_start_ > low) {
    std::memmove(in_.data() + low, in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_ - low;
    in_start_ = low;
  }
  if (in_end_ == cap) {
    fill_error_ = ENOBUFS;
    return false;
  }
  return true;
}

Http1Conn::Fill Http1Conn::fill_now(std::int64_t floor) {
  if (!make_room(floor)) return Fill::failed;
  auto r = sock_.read_now({in_.data() + in_end_, cap - in_end_});
  if (r.error == EAGAIN) return Fill::wait;
  return took(r) ? Fill::got : Fill::failed;
}

bool Http1Conn::took(const net::IoResult& r) {
  if (!r || r.eof()) {
    fill_error_ = r.eof() ? -1 : r.error;
    return false;
  }
  in_end_ += r.bytes;
  return true;
}

Task<bool> Http1Conn::fill(std::int64_t floor) {
  if (!make_room(floor)) co_return false;
  auto r = co_await sock_.read({in_.data() + in_end_, cap - in_end_});
  co_return took(r);
}

Task<Http1Conn::Head> Http1Conn::read_head() {
  reset_request();
  head_error_ = {};
  expect_continue_ = continue_sent_ = streaming_ = upgrade_request_ = chunked_ = in_trailers_ =
      false;
  keep_alive_ = true;
  body_received_ = 0;
  body_started_ms_ = 0;
  body_floor_ = 0;
  if (paused_) {
    if (llhttp_get_errno(&parser_) == HPE_PAUSED_UPGRADE)
      llhttp_resume_after_upgrade(&parser_);
    else
      llhttp_resume(&parser_);
    paused_ = false;
  }
  std::int64_t deadline = 0;
  std::size_t scanned = in_start_;
  for (;;) {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (in_start_ < in_end_ && (in_.data()[in_start_] == '\r' || in_.data()[in_start_] == '\n'))
      ++in_start_;
    if (in_start_ < in_end_) {
      if (!deadline) {
        // A TLS ClientHello (a handshake record: 0x16) on a plain port: the
        // client expects TLS, and an HTTP 400 in clear text would only be
        // garbage to it. Close at once.
        if (requests_ == 0 && in_.data()[in_start_] == 0x16) co_return Head::closed;
        deadline = sock_.loop_now() + opt_.header_timeout_ms;
        sock_.set_deadline(deadline);
      }
      std::string_view data(in_.data() + in_start_, in_end_ - in_start_);
      std::size_t from = scanned > in_start_ + 3 ? scanned - in_start_ - 3 : 0;
      std::size_t end = data.find("\r\n\r\n", from);
      // The limits hold for a head that arrived whole as much as for one
      // still arriving (a whole 10 KiB request line in one read is still 414).
      std::size_t head_len = end == std::string_view::npos ? data.size() : end + 4;
      std::size_t eol = data.substr(0, head_len).find("\r\n");
      if ((eol == std::string_view::npos ? head_len : eol) > opt_.max_request_line) {
        head_error_ = {
            414, "request line longer than " + std::to_string(opt_.max_request_line) + " bytes"};
        co_return Head::error;
      }
      std::size_t block = std::min(opt_.max_header_block, cap);
      if (end == std::string_view::npos ? data.size() >= block : head_len > block) {
        head_error_ = {431, "request head larger than " + std::to_string(block) + " bytes"};
        co_return Head::error;
      }
      if (end != std::string_view::npos) {
        sock_.set_deadline(0);
        co_return parse_head(head_len) ? Head::ok : Head::error;
      }
      // A head with bare LF line ends never holds CRLFCRLF: refuse it now
      // (parse_head() would), not when the header timeout ends the wait.
      for (std::size_t lf = data.find('\n', from); lf != std::string_view::npos;
           lf = data.find('\n', lf + 1)) {
        if (lf == 0 || data[lf - 1] != '\r') {
          sock_.set_deadline(0);
          in_start_ = in_end_;
          head_error_ = {400, std::string(bare_lf)};
          co_return Head::error;
        }
      }
      scanned = in_end_;
    } else {
      // Idle between requests: send what is pending, hold no buffer, and let
      // a drain close us at once.
      // (Without waiting when the kernel takes it all: no coroutine frame.)
      bool flushed = flush_now();
      if (!flushed) flushed = co_await flush();
      if (!flushed) co_return Head::closed;
      in_start_ = in_end_ = 0;
      scanned = 0;
      in_.release();
      if (requests_ == 0) {
        // A new connection is not idle: its first request may be on the way,
        // so even a draining server waits for it (up to the header timeout).
        // Closing it would reset a client that did nothing wrong.
        sock_.set_io_timeout(opt_.header_timeout_ms);
        auto ready = co_await sock_.wait_readable();
        sock_.set_io_timeout(opt_.write_timeout_ms);
        if (!ready) co_return Head::closed;
      } else if (sock_.draining()) {
        // Draining: bytes that already arrived are a request to answer (with
        // Connection: close); none means the connection is idle.
        if (!sock_.has_pending_input()) co_return Head::closed;
      } else {
        sock_.set_wake_on_drain(true);
        sock_.set_io_timeout(opt_.keepalive_timeout_ms);
        auto ready = co_await sock_.wait_readable();
        sock_.set_wake_on_drain(false);
        sock_.set_io_timeout(opt_.write_timeout_ms);
        if (!ready && !(ready.error == ESHUTDOWN && sock_.has_pending_input()))
          co_return Head::closed;
      }
    }
    Fill got = fill_now(0);
    if (got == Fill::wait) {
      bool ok = co_await fill(0);  // (on its own line: GCC 12, docs/coding-notes.md)
      got = ok ? Fill::got : Fill::failed;
    }
    if (got == Fill::failed) {
      sock_.set_deadline(0);
      if (fill_error_ == ETIMEDOUT && deadline) {
        head_error_ = {408, "request head not received within " +
                                std::to_string(opt_.header_timeout_ms) + " ms"};
        co_return Head::error;
      }
      co_return Head::closed;
    }
  }
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

// --- the connection loop --------------------------------------------------------

bool Http1Conn::will_close() const noexcept {
  return close_ || !keep_alive_ || broken_ || sock_.draining() ||
         requests_ >= opt_.max_requests_per_connection;
}

Task<> Http1Conn::run(const App& app) {
  bool refused_head = false;
  for (;;) {
    Head h = co_await read_head();
    if (h == Head::closed) break;
    if (h == Head::error) {
      log_refused(sock_.peer(), head_error_.status, head_error_.reason);
      co_await send_error_and_close(head_error_.status, head_error_.reason);
      refused_head = true;
      break;
    }
    ++requests_;
    // HTTP's rules for the exchange (exchange.hpp); false: it broke mid-response.
    bool whole = co_await run_exchange(*this, app);
    if (!whole) break;
    if (broken_) break;
    co_await finish_request();
    if (upgraded_ || will_close()) break;
  }
  // Bytes may still be on their way: a refused head, an unread body, requests
  // pipelined after the last one answered.
  bool unread = refused_head || (has_body_ && !body_done_) || in_start_ < in_end_;
  co_await flush();
  if (unread && !broken_ && !upgraded_) co_await linger();
}

// Closing a socket that has unread input makes the kernel send a RST, and a
// RST can destroy the response still on its way to the client (a 413 for an
// upload becomes "connection reset"). RFC 9112 §9.6: close in stages: stop
// writing, keep reading and discarding for a while, then close.
Task<> Http1Conn::linger() {
  if (sock_.draining()) co_return;  // a drain wants connections gone now
  sock_.shutdown_write();
  ensure_in();
  sock_.set_deadline(sock_.loop_now() + linger_ms);
  for (;;) {
    auto r = co_await sock_.read({in_.data(), cap});
    if (!r || r.eof()) break;
  }
  sock_.set_deadline(0);
  in_start_ = in_end_ = 0;
  in_.release();
}

Task<> Http1Conn::finish_request() {
  if (has_body_ && !body_done_ && !broken_) {
    if (expect_continue_ && !continue_sent_) {
      close_ = true;  // the client never sent the body; do not invite it now
    } else {
      // Skip an unread body (up to the body limit) to reach the next request.
      // (No co_await in a loop condition: GCC 12 miscompiles it.)
      for (;;) {
        std::span<const char> piece;
        try {
          piece = co_await read_body_chunk();
        } catch (...) {
          close_ = true;
          break;
        }
        if (piece.empty()) break;
      }
    }
  }
}

Task<> Http1Conn::send_error_and_close(int status, std::string_view reason) {
  close_ = true;
  if (started_) co_return;
  head_ = false;  // (the head may have been refused before it said HEAD)
  response_headers_.clear();
  co_await send_error(*this, status, error_line(status, reason));
  co_await flush();
}

// --- writing ------------------------------------------------------------------

void Http1Conn::put(std::string_view s) {
  if (!out_) out_ = net::Buffer::lease();
  std::memcpy(out_.data() + out_len_, s.data(), s.size());
  out_len_ += s.size();
}

bool Http1Conn::flush_now() {
  if (out_len_ == 0) {
    out_.release();
    return !broken_;
  }
  if (broken_) return false;
  iovec v{out_.data(), out_len_};
  auto r = sock_.writev_now({&v, 1});
  if (!r) return false;
  if (r.bytes < out_len_) {
    std::memmove(out_.data(), out_.data() + r.bytes, out_len_ - r.bytes);
    out_len_ -= r.bytes;
    return false;
  }
  out_len_ = 0;
  out_.release();
  return true;
}

Task<bool> Http1Conn::flush() {
  if (out_len_ == 0) {
    out_.release();
    co_return !broken_;
  }
  auto r = co_await sock_.write(std::span<const char>(out_.data(), out_len_));
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
  co_return !broken_;
}

bool Http1Conn::head_needs_flush() const {
  return head_overhead + response_headers_.wire().size() > out_space() && out_len_;
}

void Http1Conn::write_head(int status, std::int64_t content_length, bool chunked) {
  if (started_) throw std::logic_error("the response has already been started");
  if (sock_.draining()) close_ = true;
  if (chunked && http_minor_ == 0) close_ = true;  // HTTP/1.0: the close delimits the body
  // A final answer before the client was invited to send its body: it may or
  // may not send it, so where the next request starts is unknown and the
  // connection will close (finish_request). RFC 9110 §10.1.1: say so here.
  if (status >= 200 && has_body_ && !body_done_ && expect_continue_ && !continue_sent_)
    close_ = true;
  std::size_t need = head_overhead + response_headers_.wire().size();
  if (need > cap)
    throw std::length_error("response headers larger than " + std::to_string(cap - head_overhead) +
                            " bytes");
  if (!out_) out_ = net::Buffer::lease();
  char* p = out_.data() + out_len_;
  std::memcpy(p, "HTTP/1.1 ", 9);
  p += 9;
  p = put_uint(p, std::uint64_t(status));
  *p++ = ' ';
  auto reason = reason_phrase(status);
  std::memcpy(p, reason.data(), reason.size());
  p += reason.size();
  std::memcpy(p, "\r\nDate: ", 8);
  p += 8;
  auto date = http_date_now();
  std::memcpy(p, date.data(), date.size());
  p += date.size();
  *p++ = '\r';
  *p++ = '\n';
  if (content_length >= 0) {
    std::memcpy(p, "Content-Length: ", 16);
    p += 16;
    p = put_uint(p, std::uint64_t(content_length));
    *p++ = '\r';
    *p++ = '\n';
  }
  if (chunked && http_minor_ == 1) {
    std::memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
    p += 28;
  }
  const std::string& extra = response_headers_.wire();
  std::memcpy(p, extra.data(), extra.size());
  p += extra.size();
  if (status != 101) {
    if (will_close()) {
      std::memcpy(p, "Connection: close\r\n", 19);
      p += 19;
    } else if (http_minor_ == 0) {
      std::memcpy(p, "Connection: keep-alive\r\n", 24);
      p += 24;
    }
  }
  *p++ = '\r';
  *p++ = '\n';
  out_len_ = std::size_t(p - out_.data());
  started_ = true;
  status_ = status;
}

Task<> Http1Conn::send(int status, std::string_view body) {
  // The usual answer (head and body fit the buffer, which has room) is put
  // there by a plain call; only one that must wait gets a coroutine frame.
  bool bodiless = status == 204 || status == 304 || status < 200;
  if (head_needs_flush() || (!bodiless && !head_ && !body.empty() &&
                             head_overhead + response_headers_.wire().size() + body.size() >
                                 (out_ ? out_space() : net::Buffer::capacity)))
    return send_slow(status, body);
  write_head(status, bodiless ? -1 : std::int64_t(body.size()), false);
  sent_ = true;
  if (head_ || bodiless || body.empty() || broken_) return {};
  bytes_sent_ = body.size();
  put(body);
  return {};
}

Task<> Http1Conn::send_slow(int status, std::string_view body) {
  if (head_needs_flush()) co_await flush();
  bool bodiless = status == 204 || status == 304 || status < 200;
  write_head(status, bodiless ? -1 : std::int64_t(body.size()), false);
  sent_ = true;
  if (head_ || bodiless || body.empty() || broken_) co_return;
  bytes_sent_ = body.size();
  if (body.size() <= out_space()) {
    put(body);
    co_return;
  }
  // Large: head and body leave together in one writev.
  iovec iov[2] = {{out_.data(), out_len_}, {const_cast<char*>(body.data()), body.size()}};
  auto r = co_await sock_.writev(iov);
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
}

Task<> Http1Conn::send_file(int status, int fd, off_t offset, std::uint64_t length) {
  if (head_needs_flush()) co_await flush();
  write_head(status, std::int64_t(length), false);
  sent_ = true;
  if (head_ || broken_ || length == 0) co_return;
  bytes_sent_ = length;
  if (length <= inline_file_limit && length <= out_space()) {
    std::size_t got = 0;
    while (got < length) {
      ssize_t n = ::pread(fd, out_.data() + out_len_ + got, length - got, offset + off_t(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file shrank or failed under us: the promised length cannot be
        // kept, so the connection must end.
        broken_ = true;
        co_return;
      }
      got += std::size_t(n);
    }
    out_len_ += length;
    co_return;
  }
  if (!co_await flush()) co_return;
  auto r = co_await sock_.sendfile(fd, offset, length);
  if (!r) broken_ = true;
}

Task<> Http1Conn::begin_stream(int status) {
  if (head_needs_flush()) co_await flush();
  write_head(status, -1, true);
  streaming_ = true;
  co_await flush();
}

Task<> Http1Conn::write_chunk(std::string_view data) {
  if (!streaming_) throw std::logic_error("write_chunk() before begin_stream()");
  if (head_ || data.empty() || broken_) co_return;
  bytes_sent_ += data.size();
  if (http_minor_ == 0) {
    if (!co_await flush()) co_return;
    auto r = co_await sock_.write(std::span<const char>(data.data(), data.size()));
    if (!r) broken_ = true;
    co_return;
  }
  char size_line[24];
  auto [end, ec] = std::to_chars(size_line, size_line + 16, data.size(), 16);
  end[0] = '\r';
  end[1] = '\n';
  iovec iov[4] = {{out_ ? out_.data() : nullptr, out_len_},
                  {size_line, std::size_t(end + 2 - size_line)},
                  {const_cast<char*>(data.data()), data.size()},
                  {const_cast<char*>("\r\n"), 2}};
  auto r = co_await sock_.writev(iov);
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
}

Task<> Http1Conn::end_stream() {
  if (!streaming_) throw std::logic_error("end_stream() before begin_stream()");
  streaming_ = false;
  sent_ = true;
  if (!head_ && http_minor_ == 1 && !broken_) put("0\r\n\r\n");
  co_await flush();
}

Task<> Http1Conn::inform(int status, const std::vector<Header>& headers) {
  if (status < 100 || status > 199 || status == 101)
    throw std::invalid_argument("inform() takes a 1xx status other than 101");
  if (started_) throw std::logic_error("inform() after the response started");
  if (http_minor_ == 0) co_return;  // HTTP/1.0 clients do not expect 1xx
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
  for (const auto& h : headers) {
    validate_header(h.name, h.value);
    head.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  head += "\r\n";
  if (head.size() > out_space()) {
    if (!co_await flush()) co_return;
  }
  if (head.size() > cap) throw std::length_error("informational headers too large");
  put(head);
  co_await flush();
}

Task<Conn::Upgraded> Http1Conn::upgrade(std::string_view protocol,
                                        const std::vector<Header>& headers) {
  if (started_) throw std::logic_error("upgrade() after the response started");
  response_headers_.clear();
  response_headers_.set("Connection", "Upgrade");
  response_headers_.set("Upgrade", protocol);
  for (const auto& h : headers) response_headers_.add(h.name, h.value);
  if (head_needs_flush()) co_await flush();
  write_head(101, -1, false);
  sent_ = true;
  upgraded_ = true;
  co_await flush();
  std::string leftover;
  if (in_start_ < in_end_) leftover.assign(in_.data() + in_start_, in_end_ - in_start_);
  in_start_ = in_end_ = 0;
  co_return Upgraded{sock_, std::move(leftover)};
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

// --- entry points ---------------------------------------------------------------

Task<> serve_http1(net::Socket& socket, const App& app, const HttpOptions& options) {
  Http1Conn conn(socket, options);
  co_await conn.run(app);
}

net::Handler make_handler(App app, HttpOptions options) {
  struct State {
    App app;
    HttpOptions options;
  };
  auto state = std::make_shared<State>(State{std::move(app), options});
  return [state](net::Socket& s) { return serve_http1(s, state->app, state->options); };
}

}  // namespace atl::http
