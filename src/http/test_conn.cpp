#include <atoll/http/test_conn.hpp>

#include <atoll/http/exchange.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/stop.hpp>

#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace atl::http {

TestConn::TestConn(std::string_view method, std::string_view target) {
  method_ = keep(method);
  target_ = keep(target);
  version_ = "HTTP/1.1";
  head_ = method == "HEAD";
  peer_ = &peer_address_;
  auto q = target_.find('?');
  raw_path_ = target_.substr(0, q);
  if (q != std::string_view::npos) query_ = target_.substr(q + 1);
  auto decoded = percent_decode_path(raw_path_);
  if (!decoded)
    throw std::invalid_argument("TestConn: bad percent-encoding in '" + std::string(raw_path_) +
                                "'");
  path_ = std::move(*decoded);
  if (path_.empty()) path_ = "/";
  body_limit_ = 1024 * 1024;
  drain_ = std::make_unique<runtime::StopSource>();
}

TestConn::~TestConn() = default;

std::string_view TestConn::keep(std::string_view s) { return strings_.emplace_back(s); }

TestConn& TestConn::with_header(std::string_view name, std::string_view value) {
  std::string_view n = keep(name), v = keep(value);
  headers_.add(n, v);
  if (iequals(name, "host"))
    host_ = v.substr(0, v.rfind(':') == std::string_view::npos ? v.size() : v.rfind(':'));
  return *this;
}

TestConn& TestConn::with_body(std::string body, std::size_t piece) {
  request_body_ = std::move(body);
  piece_ = piece ? piece : 1;
  has_body_ = true;
  content_length_ = request_body_.size();
  with_header("Content-Length", std::to_string(request_body_.size()));
  return *this;
}

TestConn& TestConn::with_tls(bool tls) noexcept {
  tls_ = tls;
  return *this;
}

TestConn& TestConn::with_draining() {
  drain_->request();  // (no waiter yet: nothing to schedule)
  return *this;
}

bool TestConn::draining() const noexcept { return drain_ && drain_->requested(); }

TestConn& TestConn::with_upgrade_input(std::string bytes) {
  upgrade_in_ = std::move(bytes);
  return *this;
}

bool TestConn::run(const App& app) {
  runtime::Loop loop;
  return loop.run_until_complete(run_async(app));
}

namespace {

// The upgraded connection in memory: reads give `in` once, then the end.
class MemoryStream final : public Conn::ByteStream {
 public:
  MemoryStream(std::string_view in, std::string& out, const net::PeerAddress& peer)
      : in_(in), out_(out), peer_(peer) {}
  Task<std::span<const char>> read() override {
    std::span<const char> s(in_.data(), in_.size());
    in_ = {};
    co_return s;
  }
  Task<bool> write(std::string_view data) override {
    out_.append(data);
    co_return true;
  }
  bool draining() const noexcept override { return false; }
  const net::PeerAddress& peer() const noexcept override { return peer_; }

 private:
  std::string_view in_;
  std::string& out_;
  const net::PeerAddress& peer_;
};

}  // namespace

Task<bool> TestConn::run_async(const App& app) {
  bool whole = co_await run_exchange(*this, app);
  if (whole && upgrade_) {
    std::unique_ptr<PendingUpgrade> up = std::move(upgrade_);
    for (const auto& [name, value] : up->headers) response_headers_.add(name, value);
    upgraded_ = true;
    MemoryStream stream(upgrade_in_, upgrade_out_, peer_address_);
    co_await up->handler(stream);
  }
  co_return whole;
}

std::vector<std::pair<std::string, std::string>> TestConn::response_header_list() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (Header h : response_headers_) out.emplace_back(h.name, h.value);
  return out;
}

std::string TestConn::response_header(std::string_view name) const {
  for (auto& [n, v] : response_header_list())
    if (iequals(n, name)) return v;
  return {};
}

Task<std::span<const char>> TestConn::read_body_chunk() {
  if (!has_body_ || read_ >= request_body_.size()) co_return std::span<const char>{};
  if (request_body_.size() > body_limit_)
    throw HttpError(413, "request body larger than " + std::to_string(body_limit_) + " bytes");
  std::size_t n = std::min(piece_, request_body_.size() - read_);
  std::span<const char> piece(request_body_.data() + read_, n);
  read_ += n;
  ++body_reads_;
  co_return piece;
}

void TestConn::start(int status) {
  if (started_) throw std::logic_error("the response has already been started");
  started_ = true;
  status_ = status;
}

Task<> TestConn::transport_send(int status, std::string_view body) {
  start(status);
  sent_ = true;
  if (!bodiless(status, head_)) {
    body_.assign(body);
    bytes_sent_ = body.size();
  }
  co_return;
}

Task<> TestConn::transport_send_file(int status, int fd, off_t offset, std::uint64_t length) {
  start(status);
  sent_ = true;
  if (bodiless(status, head_)) co_return;
  body_.resize(length);
  std::size_t got = 0;
  while (got < length) {
    ssize_t n = ::pread(fd, body_.data() + got, length - got, offset + off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("TestConn: the file is shorter than the length sent");
    got += std::size_t(n);
  }
  bytes_sent_ = length;
}

Task<> TestConn::transport_begin_stream(int status) {
  start(status);
  streaming_ = true;
  co_return;
}

Task<> TestConn::transport_write(std::string_view data) {
  if (!streaming_) throw std::logic_error("write_chunk() before begin_stream()");
  if (head_ || data.empty()) co_return;
  chunks_.emplace_back(data);
  body_.append(data);
  bytes_sent_ += data.size();
}

Task<> TestConn::transport_end_stream() {
  if (!streaming_) throw std::logic_error("end_stream() before begin_stream()");
  streaming_ = false;
  sent_ = true;
  co_return;
}

Task<> TestConn::inform(int status, const std::vector<Header>&) {
  if (status < 100 || status > 199) throw std::invalid_argument("inform() takes a 1xx status");
  if (started_) throw std::logic_error("inform() after the response started");
  informational_.push_back(status);
  co_return;
}

}  // namespace atl::http
