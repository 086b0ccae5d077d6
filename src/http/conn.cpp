#include <atoll/http/conn.hpp>
#include <atoll/http/exchange.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atl::http {

namespace {
int hex(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> percent_decode_path(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return std::nullopt;
      int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = char(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out += d;
      i += 2;
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

QueryParams QueryParams::parse(std::string_view q) {
  QueryParams p;
  while (!q.empty()) {
    std::size_t amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    p.items_.emplace_back(
        decode_component(item.substr(0, eq)),
        eq == std::string_view::npos ? std::string() : decode_component(item.substr(eq + 1)));
  }
  return p;
}

std::optional<std::string_view> QueryParams::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

const QueryParams& Conn::query() {
  if (!parsed_query_) parsed_query_ = QueryParams::parse(query_);
  return *parsed_query_;
}

std::string_view Conn::param(std::string_view name) const noexcept {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

void Conn::reset_request() noexcept {
  method_ = target_ = raw_path_ = query_ = version_ = host_ = {};
  path_.clear();
  headers_.clear();
  head_ = has_body_ = false;
  content_length_.reset();
  parsed_query_.reset();
  path_offset = 0;
  params.clear();
  status_ = 200;
  response_headers_.clear();
  started_ = sent_ = streaming_ = false;
  filter_count_ = active_filters_ = 0;
  upgrade_.reset();
  bytes_sent_ = 0;
  request_id.clear();
  if (!assigns_.empty()) assigns_.clear();
}

void Conn::add_filter(Filter& f) {
  if (filter_count_ == max_filters)
    throw std::length_error("more than " + std::to_string(max_filters) + " response filters");
  filters_[filter_count_++] = &f;
}

void Conn::remove_filter(Filter& f) noexcept {
  for (std::uint8_t i = 0; i < filter_count_; ++i) {
    if (filters_[i] != &f) continue;
    for (std::uint8_t j = i; j + 1 < filter_count_; ++j) filters_[j] = filters_[j + 1];
    // (A stream's bits shift with their filters.)
    std::uint8_t low = active_filters_ & std::uint8_t((1u << i) - 1);
    std::uint8_t high = std::uint8_t(active_filters_ >> (i + 1)) << i;
    active_filters_ = std::uint8_t(low | high);
    filters_[--filter_count_] = nullptr;
    return;
  }
}

// Innermost (last added) first: the body passes the layers outwards.
Task<> Conn::send_filtered(int status, std::string_view body) {
  std::string buf[2];
  int which = 0;
  std::string_view cur = body;
  for (int i = filter_count_ - 1; i >= 0; --i) {
    std::string& out = buf[which];
    out.clear();
    if (filters_[i]->whole(*this, status, cur, out)) {
      cur = out;
      which ^= 1;
    }
  }
  co_await transport_send(status, cur);
}

Task<> Conn::begin_stream(int status) {
  active_filters_ = 0;
  for (int i = filter_count_ - 1; i >= 0; --i)
    if (filters_[i]->begin(*this, status)) active_filters_ |= std::uint8_t(1u << i);
  co_await transport_begin_stream(status);
}

Task<> Conn::write_filtered(std::string_view data, bool last) {
  std::string buf[2];
  int which = 0;
  std::string_view cur = data;
  for (int i = filter_count_ - 1; i >= 0; --i) {
    if (!(active_filters_ & (1u << i))) continue;
    std::string& out = buf[which];
    out.clear();
    filters_[i]->write(cur, last, out);
    cur = out;
    which ^= 1;
  }
  if (!cur.empty()) co_await transport_write(cur);
}

Task<> Conn::end_stream() {
  if (active_filters_) co_await write_filtered({}, true);
  active_filters_ = 0;
  co_await transport_end_stream();
}

void Conn::upgrade(std::string_view protocol,
                   std::vector<std::pair<std::string, std::string>> headers,
                   UpgradeHandler handler) {
  if (started_) throw std::logic_error("upgrade() after the response started");
  // RFC 9110 §7.8: only to a protocol the client listed in Upgrade.
  bool asked = false;
  std::string_view list = header("upgrade");
  while (!list.empty() && !asked) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    asked = iequals(item.substr(0, item.find('/')), protocol.substr(0, protocol.find('/')));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  if (!asked)
    throw std::logic_error("upgrade(): the client did not ask for '" + std::string(protocol) + "'");
  for (const auto& [name, value] : headers) validate_header(name, value);
  upgrade_ = std::make_unique<PendingUpgrade>(
      PendingUpgrade{std::string(protocol), std::move(headers), std::move(handler)});
  status_ = 101;
  started_ = sent_ = true;  // answered, as far as the pipeline is concerned
}

Task<std::string> Conn::read_body(std::optional<std::size_t> limit) {
  if (limit) set_body_limit(*limit);
  std::string body;
  if (content_length_ && *content_length_ <= body_limit_)
    body.reserve(std::size_t(*content_length_));
  for (;;) {
    auto chunk = co_await read_body_chunk();
    if (chunk.empty()) break;
    body.append(chunk.data(), chunk.size());
  }
  co_return body;
}

Task<> Conn::send_file(int status, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    co_await send_error(*this, 404);
    co_return;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  co_await send_file(status, fd, 0, std::uint64_t(st.st_size));
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

}  // namespace atl::http
