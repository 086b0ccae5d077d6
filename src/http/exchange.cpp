#include <atoll/http/exchange.hpp>

#include <atoll/runtime/log.hpp>

namespace atl::http {

std::string error_line(int status, std::string_view detail) {
  std::string line(reason_phrase(status));
  if (!detail.empty()) {
    line += ": ";
    line += detail;
  }
  return line;
}

Task<> send_error(Conn& c, int status, std::string_view message) {
  c.response_headers().set("Content-Type", "text/plain; charset=utf-8");
  std::string body = message.empty() ? error_line(status) : std::string(message);
  body += '\n';
  co_await c.send(status, body);
}

Failure failure_of(std::exception_ptr e) noexcept {
  Failure f;
  try {
    std::rethrow_exception(e);
  } catch (const HttpError& err) {
    f.status = err.status();
    f.message = f.log = err.what();
    f.expected = true;
  } catch (const std::exception& err) {
    f.log = err.what();
  } catch (...) {
    f.log = "non-standard exception";
  }
  if (!f.expected) f.message = error_line(500);
  return f;
}

Task<bool> run_exchange(Conn& c, const App& app) {
  std::exception_ptr thrown;
  try {
    co_await app(c);
  } catch (...) {
    thrown = std::current_exception();
  }
  if (!thrown && c.response_sent()) co_return true;
  co_return co_await finish_exchange(c, thrown);
}

Task<bool> finish_exchange(Conn& c, std::exception_ptr thrown) {
  if (thrown) {
    Failure f = failure_of(thrown);
    if (!f.expected)
      log::warn("{} {} from {} failed{}{}: {}", c.method(), c.target(), c.peer().to_string(),
                c.request_id.empty() ? "" : " request_id=", c.request_id, f.log);
    if (c.response_started()) co_return false;  // mid-response: only a close is honest
    // A body left unread may or may not follow: the connection ends after this.
    if (c.body_unread()) c.close_after_response();
    if (!f.expected && !c.request_id.empty()) f.message += " (request id " + c.request_id + ")";
    c.response_headers().clear();  // what the failed handler set is not this answer's
    co_await send_error(c, f.status, f.message);
    co_return true;
  }
  if (!c.response_sent()) {
    if (c.streaming()) {
      co_await c.end_stream();
    } else if (!c.response_started()) {
      log::warn("{} {}: the handler returned without a response", c.method(), c.target());
      c.response_headers().clear();
      co_await send_error(c, 500, error_line(500, "no response"));
    }
  }
  co_return true;
}

}  // namespace atl::http
