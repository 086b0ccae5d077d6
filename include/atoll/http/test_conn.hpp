#pragma once
// TestConn: an in-memory exchange, for unit tests of handlers and
// middleware without sockets (Plug.Test's job). Build a request, run an App
// through it under HTTP's shared rules (exchange.hpp), then read what was
// answered:
//
//   http::TestConn c("POST", "/items?x=1");
//   c.with_header("Content-Type", "application/json").with_body(R"({"a":1})");
//   c.run(app);                         // its own event loop, to completion
//   EXPECT_EQ(c.status(), 201);
//   EXPECT_EQ(c.response_header("Location"), "/items/1");
//   EXPECT_EQ(c.response_body(), "...");
//
// send_file() bodies are read from the descriptor; a streamed response's
// chunks are kept one by one as well as joined; after an upgrade() the new
// protocol's handler runs over with_upgrade_input()'s bytes, and what it
// wrote is upgraded_output().
#include <atoll/http/conn.hpp>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace atl::http {

class TestConn final : public Conn {
 public:
  explicit TestConn(std::string_view method = "GET", std::string_view target = "/");
  ~TestConn() override;

  // --- building the request ------------------------------------------------------------
  TestConn& with_header(std::string_view name, std::string_view value);
  /// The request body (Content-Length is set to its size), read back by
  /// read_body_chunk() in pieces of at most `piece` bytes.
  TestConn& with_body(std::string body, std::size_t piece = 16 * 1024);
  TestConn& with_tls(bool tls = true) noexcept;
  /// What the client sends after a protocol switch (read by the upgrade
  /// handler; then the end of the stream).
  TestConn& with_upgrade_input(std::string bytes);
  /// The server is draining already when the app runs (drain_signal() is
  /// requested, draining() is true).
  TestConn& with_draining();

  // --- running ------------------------------------------------------------------------
  /// Runs `app` with the exchange rules on a loop of its own, to the end.
  /// Returns run_exchange()'s answer (false: it failed mid-response).
  bool run(const App& app);
  /// The same, inside a running loop.
  Task<bool> run_async(const App& app);

  // --- what was answered --------------------------------------------------------------
  /// The first value of a response header, or an empty string.
  std::string response_header(std::string_view name) const;
  /// Every response header, in order, as sent.
  std::vector<std::pair<std::string, std::string>> response_header_list() const;
  /// The body as the client would receive it (nothing for HEAD, 204, 304).
  const std::string& response_body() const noexcept { return body_; }
  /// A streamed response's pieces, in order.
  const std::vector<std::string>& chunks() const noexcept { return chunks_; }
  /// The informational responses (100, 103) sent before the final one.
  const std::vector<int>& informational() const noexcept { return informational_; }
  /// What the upgrade handler wrote, and whether it ran.
  const std::string& upgraded_output() const noexcept { return upgrade_out_; }
  bool upgraded() const noexcept { return upgraded_; }
  /// How many times the handler read a piece of the body.
  std::size_t body_reads() const noexcept { return body_reads_; }

  // --- Conn -------------------------------------------------------------------------------
  Task<std::span<const char>> read_body_chunk() override;
  Task<> inform(int status, const std::vector<Header>& headers) override;
  bool body_unread() const noexcept override { return has_body_ && read_ < request_body_.size(); }
  bool draining() const noexcept override;
  runtime::StopSource* drain_signal() const noexcept override { return drain_.get(); }

 protected:
  Task<> transport_send(int status, std::string_view body) override;
  Task<> transport_send_file(int status, int fd, off_t offset, std::uint64_t length) override;
  Task<> transport_begin_stream(int status) override;
  Task<> transport_write(std::string_view data) override;
  Task<> transport_end_stream() override;

 private:
  void start(int status);
  std::string_view keep(std::string_view s);

  std::deque<std::string> strings_;  // what the request's views point into
  net::PeerAddress peer_address_;
  std::string request_body_;
  std::size_t read_ = 0;
  std::size_t piece_ = 16 * 1024;
  std::size_t body_reads_ = 0;
  std::string body_;
  std::vector<std::string> chunks_;
  std::vector<int> informational_;
  std::unique_ptr<runtime::StopSource> drain_;
  std::string upgrade_in_;
  std::string upgrade_out_;
  bool upgraded_ = false;
};

}  // namespace atl::http
