#pragma once
// The rules of an HTTP exchange that every protocol shares, in one place:
// HTTP/1.1 runs each request through run_exchange() today, an HTTP/2 stream
// will run its own the same way, and so does http::TestConn.
//
//   - no body for 1xx, 204 and 304, nor for any answer to HEAD
//     (RFC 9110 §6.4.1, §9.3.2): bodiless();
//   - a handler that throws: HttpError answers its own status with its
//     reason; anything else is logged and answers 500, showing the request
//     id, never the exception's text (failure_of());
//   - a handler that returns without answering: 500, logged;
//   - a streamed response the handler did not end is ended;
//   - one error page for all of it, and for every other error a part of
//     atoll makes: one line of text/plain (send_error()), by default
//     "Reason Phrase: detail" (error_line()).
#include <atoll/http/conn.hpp>

#include <exception>
#include <string>
#include <string_view>

namespace atl::http {

/// True when a response with `status` to a request that `head` or not
/// carries no body.
constexpr bool bodiless(int status, bool head = false) noexcept {
  return head || status < 200 || status == 204 || status == 304;
}

/// "Not Found: no site answers to this host", or "Not Found" with no detail.
std::string error_line(int status, std::string_view detail = {});

/// Answers `c` with the error page: `message` and a newline as text/plain
/// (error_line(status) when `message` is empty). Headers set before stay (an
/// Allow, a WWW-Authenticate); run_exchange() clears a failed handler's
/// first. The response must not have started.
Task<> send_error(Conn& c, int status, std::string_view message = {});

/// What a handler's exception becomes.
struct Failure {
  int status = 500;
  std::string message;    // what the client is shown: HttpError's reason, or error_line(500)
  std::string log;        // the exception's text, for the log (never sent)
  bool expected = false;  // an HttpError: the handler meant it, nothing to log
};
Failure failure_of(std::exception_ptr e) noexcept;

/// Runs `app` on `c` under the rules above. Returns false if the exchange
/// failed after its response started: the connection cannot carry another
/// request and must close.
Task<bool> run_exchange(Conn& c, const App& app);

/// The rules' second half, for a protocol whose hot loop awaits the app
/// itself (one coroutine frame less per request): call it when the app
/// threw (`thrown`) or returned without finishing its response; the answer
/// is run_exchange's.
///
///   try { co_await app(c); } catch (...) { thrown = std::current_exception(); }
///   if (thrown || !c.response_sent()) whole = co_await finish_exchange(c, thrown);
Task<bool> finish_exchange(Conn& c, std::exception_ptr thrown);

}  // namespace atl::http
