#pragma once
// Http1Conn: the HTTP/1.x implementation of Conn, and its connection loop.
#include <atoll/http/conn.hpp>
#include <atoll/http/server.hpp>
#include <atoll/net/buffer.hpp>
#include <atoll/net/socket.hpp>

#include <llhttp.h>

namespace atl::http {

class Http1Conn final : public Conn {
 public:
  Http1Conn(net::Socket& socket, const HttpOptions& options);

  /// The connection loop: one request after another until close.
  Task<> run(const App& app);

  Task<std::span<const char>> read_body_chunk() override;
  Task<> transport_send(int status, std::string_view body) override;
  Task<> transport_send_file(int status, int fd, off_t offset, std::uint64_t length) override;
  Task<> transport_begin_stream(int status) override;
  Task<> transport_write(std::string_view data) override;
  Task<> transport_end_stream() override;
  Task<> inform(int status, const std::vector<Header>& headers) override;
  bool draining() const noexcept override { return sock_.draining(); }
  runtime::StopSource* drain_signal() const noexcept override { return sock_.drain_signal(); }
  bool body_unread() const noexcept override { return has_body_ && !body_done_; }

 private:
  struct HeadError {
    int status = 0;
    std::string reason;
  };
  enum class Head { ok, closed, error };

  // llhttp callbacks
  static int on_url(llhttp_t*, const char*, std::size_t);
  static int on_header_field(llhttp_t*, const char*, std::size_t);
  static int on_header_value(llhttp_t*, const char*, std::size_t);
  static int on_header_value_complete(llhttp_t*);
  static int on_headers_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, std::size_t);
  static int on_message_complete(llhttp_t*);
  static const llhttp_settings_t& settings();

  Task<Head> read_head();
  bool parse_head(std::size_t head_len);
  bool finish_head();
  Task<bool> fill(std::int64_t floor);
  enum class Fill { got, wait, failed };
  /// fill() without waiting: `wait` leaves the job to fill().
  Fill fill_now(std::int64_t floor);
  /// Makes room in in_ (compacting down to `floor`); false when full.
  bool make_room(std::int64_t floor);
  /// Adds a read's bytes to in_; false (fill_error_ set) at EOF or error.
  bool took(const net::IoResult& r);
  void ensure_in();
  Task<bool> flush();
  /// flush() without waiting: true when out_ is empty and all is well;
  /// false leaves the rest (and any error) to flush().
  bool flush_now();
  Task<> send_error_and_close(int status, std::string_view reason);
  /// The 101 for the switch upgrade() recorded, then its handler over the
  /// connection's bytes (a Stream, h1_writer.cpp).
  Task<> switch_protocols();
  class Stream;
  Task<> finish_request();
  Task<> linger();
  bool will_close() const noexcept;

  /// Writes the status line and headers into out_, which must have room:
  /// flush first when head_needs_flush().
  void write_head(int status, std::int64_t content_length, bool chunked);
  bool head_needs_flush() const;
  Task<> send_slow(int status, std::string_view body);
  void put(std::string_view s);
  std::size_t out_space() const noexcept { return out_ ? net::Buffer::capacity - out_len_ : 0; }

  net::Socket& sock_;
  const HttpOptions& opt_;
  llhttp_t parser_;
  net::Buffer in_;
  std::size_t in_start_ = 0;
  std::size_t in_end_ = 0;
  net::Buffer out_;
  std::size_t out_len_ = 0;
  std::string big_head_;  // a head larger than one buffer (rare)

  // parse state
  std::string_view cur_name_;
  std::string_view cur_value_;
  HeadError head_error_;
  bool paused_ = false;
  bool keep_alive_ = true;
  bool upgrade_request_ = false;
  bool upgraded_ = false;
  bool body_done_ = true;
  bool chunked_ = false;
  bool in_trailers_ = false;  // the head is parsed: fields now are trailers
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool broken_ = false;  // the connection cannot carry another request
  char* body_cursor_ = nullptr;
  std::uint64_t body_received_ = 0;
  std::int64_t body_started_ms_ = 0;
  std::size_t requests_ = 0;
  std::uint8_t http_minor_ = 1;
  std::int64_t body_floor_ = 0;  // compaction never moves data below this (the head)
  int fill_error_ = 0;           // why fill() failed: -1 EOF, else errno
};

}  // namespace atl::http
