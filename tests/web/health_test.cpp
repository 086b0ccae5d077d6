// health: 200 while serving, 503 while the server drains (a real drain of a
// real server), the readiness check, methods, and falling through.
#include <atoll/net/telemetry.hpp>
#include <atoll/web/health.hpp>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

Task<> fallback(http::Conn& c) { co_await c.send(200, "the app\n"); }

// Flags set from the server's thread, waited on from the test's.
class Events : public net::Telemetry {
 public:
  void listener_stopped(const net::Endpoint&) override { set(listener_stopped_); }
  void handler_waiting() { set(handler_waiting_); }
  bool wait_listener_stopped() { return wait(listener_stopped_); }
  bool wait_handler_waiting() { return wait(handler_waiting_); }

 private:
  void set(bool& flag) {
    {
      std::lock_guard lock(m_);
      flag = true;
    }
    cv_.notify_all();
  }
  bool wait(bool& flag) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return flag; });
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool listener_stopped_ = false;
  bool handler_waiting_ = false;
};

}  // namespace

TEST(Health, AnswersOkAsJson) {
  HttpTestServer s(web::pipeline({web::health_middleware()}, fallback));
  auto r = request(s.port(), "GET", "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("cache-control"), "no-store");

  auto head = request(s.port(), "HEAD", "/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST(Health, OtherPathsFallThrough) {
  HttpTestServer s(web::pipeline({web::fall_through(web::health({.path = "/healthz"}))}, fallback));
  EXPECT_EQ(request(s.port(), "GET", "/health").body, "the app\n");
  EXPECT_EQ(request(s.port(), "GET", "/healthz/x").body, "the app\n");
  EXPECT_EQ(request(s.port(), "GET", "/healthz").status, 200);
}

TEST(Health, OtherMethodsGet405) {
  HttpTestServer s(web::pipeline({web::health_middleware()}, fallback));
  auto r = request(s.port(), "POST", "/health");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, HEAD");
}

TEST(Health, AFailedCheckIs503) {
  std::atomic<bool> ready{false};
  HttpTestServer s(
      web::pipeline({web::health_middleware({.check = [&] { return ready.load(); }})}, fallback));
  auto r = request(s.port(), "GET", "/health");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"status":"unavailable"})");
  ready = true;
  EXPECT_EQ(request(s.port(), "GET", "/health").status, 200);
}

TEST(Health, DrainingIs503) {
  // The request's head arrives, then a gate in front of the health check
  // waits for its one-byte body. Meanwhile the server starts draining; the
  // byte goes only after the listener closed (the drain has reached the
  // connection by then), so the check runs during the drain.
  Events events;
  web::Middleware gate = [&events](http::Conn& c, const http::App& next) -> Task<> {
    events.handler_waiting();
    co_await c.read_body();
    co_await next(c);
  };
  auto app = web::pipeline({gate, web::health_middleware()}, fallback);
  net::Server server({.loops = 1, .telemetry = &events}, http::make_handler(app));
  server.start();

  UniqueFd fd(connect_tcp(server.port()));
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"));
  ASSERT_TRUE(events.wait_handler_waiting());
  std::jthread stopper([&] { server.stop(); });  // joins even if an assertion fails
  ASSERT_TRUE(events.wait_listener_stopped());
  ASSERT_TRUE(send_all(fd.get(), "x"));
  std::string raw = recv_all(fd.get(), 10'000);
  stopper.join();
  auto end = raw.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << raw;
  auto r = parse_head(raw.substr(0, end + 4));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(raw.substr(end + 4), R"({"status":"draining"})");
  EXPECT_EQ(r.header("connection"), "close");
}
