#pragma once
// Conn: one request and its response, the same for every protocol.
//
// A handler (and every middleware before it) sees a Conn: the request's
// method, target, headers and body, and the means to answer. HTTP/1.1
// implements it today; HTTP/2 will implement the same virtual calls, so an
// application never knows which protocol carried the request.
#include <atoll/http/headers.hpp>
#include <atoll/net/address.hpp>
#include <atoll/runtime/task.hpp>

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

namespace atl::net {
class Socket;
}
namespace atl::runtime {
class StopSource;
}

namespace atl::http {

/// Thrown to end a request with an HTTP error (e.g. 413 when a body is over
/// its limit, 400 for a malformed body). If nothing was sent yet, the server
/// answers `status` with `what()` as the reason; the client sees it.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& reason) : std::runtime_error(reason), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

/// The standard reason phrase for a status code ("Not Found").
std::string_view reason_phrase(int status) noexcept;

/// Parsed query parameters, in order; percent- and '+'-decoded.
class QueryParams {
 public:
  /// The first value of `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::pair<std::string, std::string>> const& all() const noexcept { return items_; }
  static QueryParams parse(std::string_view query);

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

/// Percent-decodes a path; nullopt if it holds a NUL or a bad escape.
std::optional<std::string> percent_decode_path(std::string_view raw);

class Conn {
 public:
  virtual ~Conn() = default;

  // --- the request ------------------------------------------------------------
  std::string_view method() const noexcept { return method_; }
  /// The request-target as sent ("/a%20b?x=1").
  std::string_view target() const noexcept { return target_; }
  /// The target's path, undecoded ("/a%20b").
  std::string_view raw_path() const noexcept { return raw_path_; }
  /// The path, percent-decoded ("/a b"); '/' for "*" and empty targets.
  const std::string& path() const noexcept { return path_; }
  /// The text after '?', undecoded.
  std::string_view query_string() const noexcept { return query_; }
  /// The query, parsed on first use.
  const QueryParams& query();
  const RequestHeaders& headers() const noexcept { return headers_; }
  std::string_view header(std::string_view name) const noexcept { return headers_.get(name); }
  /// "HTTP/1.1", "HTTP/1.0", "HTTP/2".
  std::string_view version() const noexcept { return version_; }
  std::string_view scheme() const noexcept { return tls_ ? "https" : "http"; }
  /// The Host header (or :authority) without the port, lowercase as sent.
  std::string_view host() const noexcept { return host_; }
  const net::PeerAddress& peer() const noexcept { return *peer_; }
  bool is_head() const noexcept { return head_; }

  /// Routing state: where a mounted router's own path begins, and path params.
  std::size_t path_offset = 0;
  std::vector<std::pair<std::string_view, std::string>> params;
  /// A path parameter set by the router (":id"), or an empty view.
  std::string_view param(std::string_view name) const noexcept;

  /// Body limit for this request (a route may raise or lower it before reading).
  void set_body_limit(std::size_t bytes) noexcept { body_limit_ = bytes; }
  std::size_t body_limit() const noexcept { return body_limit_; }
  /// The declared body length, if the client sent Content-Length.
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  bool has_body() const noexcept { return has_body_; }
  /// Reads the next piece of the body (decoded, de-chunked); an empty span
  /// means the body is complete. The span is valid until the next call.
  /// Over the body limit: HttpError 413. Sends "100 Continue" first when the
  /// client asked for it.
  virtual Task<std::span<const char>> read_body_chunk() = 0;
  /// Reads the whole body, up to `limit` bytes (default: body_limit()).
  Task<std::string> read_body(std::optional<std::size_t> limit = std::nullopt);

  // --- the response -------------------------------------------------------------
  int status() const noexcept { return status_; }
  void set_status(int status) noexcept { status_ = status; }
  ResponseHeaders& response_headers() noexcept { return response_headers_; }
  /// Sets a response header (refused with std::invalid_argument on CR/LF).
  Conn& set_header(std::string_view name, std::string_view value) {
    response_headers_.set(name, value);
    return *this;
  }
  /// Sends the whole response: status, headers and `body` (length-delimited).
  Task<> send(int status, std::string_view body) {
    if (filter_count_ == 0) return transport_send(status, body);  // no frame of its own
    return send_filtered(status, body);
  }
  Task<> send(std::string_view body) { return send(status_, body); }
  /// Sends `length` bytes of an open file from `offset` (sendfile on plain TCP).
  /// The descriptor stays the caller's. Response filters do not see files.
  Task<> send_file(int status, int fd, off_t offset, std::uint64_t length) {
    return transport_send_file(status, fd, offset, length);
  }
  /// Sends a file by path (opened and closed here); 404 if it cannot be opened.
  Task<> send_file(int status, const std::string& path);
  /// Starts a streamed response (chunked on HTTP/1.1), then write_chunk()
  /// as data comes and end_stream() at the end. Each write waits for the
  /// client to take the bytes: a slow client slows the producer, no more.
  Task<> begin_stream(int status);
  Task<> write_chunk(std::string_view data) {
    if (active_filters_ == 0) return transport_write(data);
    return write_filtered(data, false);
  }
  Task<> end_stream();

  /// A response filter (nginx's body filters, h2o's ostreams): it sees each
  /// response's head before it goes out and may rewrite the body on its way
  /// to the transport. Middleware adds one for the rest of the pipeline and
  /// removes it on the way out (compression does); filters added later run
  /// first, as the inner layers' output passes the outer ones.
  class Filter {
   public:
    virtual ~Filter() = default;
    /// A whole body (send()): true if it put a replacement in `out` (and set
    /// the headers that go with it), false to pass `body` on as it is.
    virtual bool whole(Conn& c, int status, std::string_view body, std::string& out) = 0;
    /// A stream starts: true if this filter rewrites its pieces.
    virtual bool begin(Conn& c, int status) = 0;
    /// A piece of a stream it rewrites, perhaps empty (`last`: the end of
    /// the stream): appends what to send, perhaps nothing, to `out`.
    virtual void write(std::string_view in, bool last, std::string& out) = 0;
  };
  static constexpr std::size_t max_filters = 4;
  /// Adds `f` until remove_filter() or the end of the request. Throws
  /// std::length_error past max_filters.
  void add_filter(Filter& f);
  void remove_filter(Filter& f) noexcept;
  /// A filter for a scope, as a middleware holds one around `next(c)`.
  class ScopedFilter {
   public:
    ScopedFilter(Conn& c, Filter& f) : c_(c), f_(f) { c_.add_filter(f_); }
    ~ScopedFilter() { c_.remove_filter(f_); }
    ScopedFilter(const ScopedFilter&) = delete;
    ScopedFilter& operator=(const ScopedFilter&) = delete;

   private:
    Conn& c_;
    Filter& f_;
  };

  /// Sends an informational response (103 Early Hints with `headers`).
  virtual Task<> inform(int status, const std::vector<Header>& headers) = 0;
  /// The bytes of a connection after a protocol switch: the socket's on
  /// HTTP/1.1; an HTTP/2 stream's for RFC 8441's extended CONNECT.
  class ByteStream {
   public:
    virtual ~ByteStream() = default;
    /// The next bytes (those the client sent after the request first); an
    /// empty span at the end (the peer closed, or the connection failed).
    virtual Task<std::span<const char>> read() = 0;
    /// Sends all of `data`; false if the peer is gone.
    virtual Task<bool> write(std::string_view data) = 0;
    /// True while the server drains: the session should end soon.
    virtual bool draining() const noexcept = 0;
    virtual const net::PeerAddress& peer() const noexcept = 0;
  };
  using UpgradeHandler = std::function<Task<>(ByteStream&)>;
  /// Switches protocols (101), as a step of its own: the app records the
  /// switch and returns. Once the pipeline has returned (the access log has
  /// its 101 line), the 101 goes out with Connection and Upgrade and
  /// `headers`, and `handler` runs over the connection's bytes; the
  /// connection ends when it returns. The server's I/O timeouts no longer
  /// apply then (a session may rightly sit idle for hours): the protocol
  /// keeps its own liveness, as WebSocket pings do, and ends on draining().
  /// Throws std::logic_error if the client did not ask for `protocol`
  /// (Upgrade) or the response has started.
  void upgrade(std::string_view protocol, std::vector<std::pair<std::string, std::string>> headers,
               UpgradeHandler handler);
  /// The switch upgrade() recorded, for the transport (upgrade_).
  struct PendingUpgrade {
    std::string protocol;
    std::vector<std::pair<std::string, std::string>> headers;
    UpgradeHandler handler;
  };

  /// True once the status line (or its equivalent) went to the client.
  bool response_started() const noexcept { return started_; }
  /// True once the response is complete.
  bool response_sent() const noexcept { return sent_; }
  /// True between begin_stream() and end_stream().
  bool streaming() const noexcept { return streaming_ && !sent_; }
  /// True if the request has a body not yet read to its end.
  virtual bool body_unread() const noexcept { return false; }
  /// Asks the server to close the connection after this response.
  void close_after_response() noexcept { close_ = true; }
  bool closing() const noexcept { return close_; }
  /// True while the server drains (stops): a health check answers 503 so a
  /// load balancer sends new work elsewhere. False where nothing drains.
  virtual bool draining() const noexcept { return false; }
  /// The server's drain signal, requested when it starts to stop: a
  /// long-lived response (an event stream) waits on it, with
  /// `runtime::sleep_for(ms, *signal)` or `signal->wait()`, and ends.
  /// nullptr where nothing drains.
  virtual runtime::StopSource* drain_signal() const noexcept { return nullptr; }

  // --- per-request state ----------------------------------------------------------
  /// The request id, if a middleware set one (shown on error pages and logs).
  std::string request_id;
  /// Bytes of body sent so far in the response (for logs and metrics).
  std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }

  /// Typed assigns: one value of each type per request, created on first use.
  template <class T>
  T& assign() {
    auto& slot = assigns_[std::type_index(typeid(T))];
    if (!slot) slot = std::shared_ptr<void>(std::make_shared<T>());
    return *static_cast<T*>(slot.get());
  }
  template <class T>
  T* find_assign() noexcept {
    auto it = assigns_.find(std::type_index(typeid(T)));
    return it == assigns_.end() ? nullptr : static_cast<T*>(it->second.get());
  }

 protected:
  /// Clears everything per-request, keeping capacity.
  void reset_request() noexcept;
  // --- the transport: what a protocol implements --------------------------------------
  // The response as the filters leave it. HTTP/1.1 writes it on its socket;
  // an HTTP/2 stream will frame it; TestConn records it.
  virtual Task<> transport_send(int status, std::string_view body) = 0;
  virtual Task<> transport_send_file(int status, int fd, off_t offset, std::uint64_t length) = 0;
  virtual Task<> transport_begin_stream(int status) = 0;
  virtual Task<> transport_write(std::string_view data) = 0;
  virtual Task<> transport_end_stream() = 0;

  std::string_view method_;
  std::string_view target_;
  std::string_view raw_path_;
  std::string path_;
  std::string_view query_;
  std::string_view version_;
  std::string_view host_;
  RequestHeaders headers_;
  const net::PeerAddress* peer_ = nullptr;
  bool tls_ = false;
  bool head_ = false;
  bool has_body_ = false;
  std::optional<std::uint64_t> content_length_;
  std::size_t body_limit_ = 0;
  std::optional<QueryParams> parsed_query_;

  int status_ = 200;
  ResponseHeaders response_headers_;
  bool started_ = false;
  bool sent_ = false;
  bool streaming_ = false;
  bool close_ = false;
  std::uint64_t bytes_sent_ = 0;
  std::map<std::type_index, std::shared_ptr<void>> assigns_;
  std::unique_ptr<PendingUpgrade> upgrade_;

 private:
  Task<> send_filtered(int status, std::string_view body);
  Task<> write_filtered(std::string_view data, bool last);
  Filter* filters_[max_filters] = {};
  std::uint8_t filter_count_ = 0;
  std::uint8_t active_filters_ = 0;  // a bit per filter rewriting the current stream
};

/// An application: every request goes through it.
using App = std::function<Task<>(Conn&)>;

}  // namespace atl::http
