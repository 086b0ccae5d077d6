// HTTP's shared exchange rules (http/exchange.hpp), through http::TestConn:
// no socket, no protocol, just what every protocol must do alike.
#include <atoll/http/exchange.hpp>
#include <atoll/http/test_conn.hpp>
#include <atoll/runtime/stop.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

using atl::Task;
using atl::http::Conn;
using atl::http::HttpError;
using atl::http::TestConn;

TEST(Exchange, AnAnswerIsRecorded) {
  TestConn c("GET", "/a%20b?x=1");
  c.with_header("Host", "example.test:8080");
  ASSERT_TRUE(c.run([](Conn& conn) -> Task<> {
    EXPECT_EQ(conn.path(), "/a b");
    EXPECT_EQ(conn.query_string(), "x=1");
    EXPECT_EQ(conn.host(), "example.test");
    conn.set_header("Content-Type", "text/plain");
    co_await conn.send(201, "made");
  }));
  EXPECT_EQ(c.status(), 201);
  EXPECT_EQ(c.response_header("content-type"), "text/plain");
  EXPECT_EQ(c.response_body(), "made");
}

TEST(Exchange, NoBodyForHeadOrBodilessStatuses) {
  auto app = [](int status) {
    return [status](Conn& conn) -> Task<> { co_await conn.send(status, "body"); };
  };
  TestConn head("HEAD", "/");
  head.run(app(200));
  EXPECT_EQ(head.status(), 200);
  EXPECT_EQ(head.response_body(), "");
  for (int status : {204, 304}) {
    TestConn c;
    c.run(app(status));
    EXPECT_EQ(c.status(), status);
    EXPECT_EQ(c.response_body(), "") << status;
  }
  EXPECT_TRUE(atl::http::bodiless(100));
  EXPECT_TRUE(atl::http::bodiless(200, true));
  EXPECT_FALSE(atl::http::bodiless(200));
  EXPECT_FALSE(atl::http::bodiless(404));
}

TEST(Exchange, AnHttpErrorAnswersItsStatusAndReason) {
  TestConn c;
  c.run([](Conn& conn) -> Task<> {
    conn.set_header("X-Dropped", "1");  // the error page replaces what was set
    throw HttpError(409, "it exists");
    co_return;
  });
  EXPECT_EQ(c.status(), 409);
  EXPECT_EQ(c.response_body(), "it exists\n");
  EXPECT_EQ(c.response_header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(c.response_header("X-Dropped"), "");
}

TEST(Exchange, AnyOtherExceptionIs500WithoutItsText) {
  TestConn c;
  c.run([](Conn& conn) -> Task<> {
    conn.request_id = "abc123";
    throw std::runtime_error("secret detail");
    co_return;
  });
  EXPECT_EQ(c.status(), 500);
  EXPECT_EQ(c.response_body(), "Internal Server Error (request id abc123)\n");
  TestConn odd;
  odd.run([](Conn&) -> Task<> {
    throw 42;
    co_return;
  });
  EXPECT_EQ(odd.response_body(), "Internal Server Error\n");
}

TEST(Exchange, NoResponseIs500) {
  TestConn c;
  EXPECT_TRUE(c.run([](Conn&) -> Task<> { co_return; }));
  EXPECT_EQ(c.status(), 500);
  EXPECT_EQ(c.response_body(), "Internal Server Error: no response\n");
}

TEST(Exchange, AStreamTheHandlerLeftOpenIsEnded) {
  TestConn c;
  c.run([](Conn& conn) -> Task<> {
    co_await conn.begin_stream(200);
    co_await conn.write_chunk("a");
    co_await conn.write_chunk("bc");
  });
  EXPECT_TRUE(c.response_sent());
  EXPECT_EQ(c.chunks(), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(c.response_body(), "abc");
}

TEST(Exchange, AFailureMidResponseBreaksTheExchange) {
  TestConn c;
  EXPECT_FALSE(c.run([](Conn& conn) -> Task<> {
    co_await conn.begin_stream(200);
    co_await conn.write_chunk("half");
    throw std::runtime_error("the source failed");
  }));
  EXPECT_EQ(c.status(), 200);
  EXPECT_EQ(c.response_body(), "half");
}

TEST(Exchange, AnErrorWithTheBodyUnreadClosesTheConnection) {
  TestConn c("POST", "/");
  c.with_body("unread");
  c.run([](Conn&) -> Task<> {
    throw HttpError(400, "no");
    co_return;
  });
  EXPECT_EQ(c.status(), 400);
  EXPECT_TRUE(c.closing()) << "the client may still be sending the body";
  TestConn read("POST", "/");
  read.with_body("read");
  read.run([](Conn& conn) -> Task<> {
    co_await conn.read_body();
    throw HttpError(400, "no");
  });
  EXPECT_FALSE(read.closing());
}

TEST(Exchange, TheBodyLimitIs413) {
  TestConn c("POST", "/");
  c.with_body(std::string(100, 'x'), 7);
  c.run([](Conn& conn) -> Task<> {
    std::string body = co_await conn.read_body(50);
    co_await conn.send(200, body);
  });
  EXPECT_EQ(c.status(), 413);
  TestConn ok("POST", "/");
  ok.with_body(std::string(100, 'x'), 7);
  ok.run([](Conn& conn) -> Task<> {
    std::string body = co_await conn.read_body();
    co_await conn.send(200, std::to_string(body.size()));
  });
  EXPECT_EQ(ok.response_body(), "100");
  EXPECT_EQ(ok.body_reads(), 15u);
}

TEST(Exchange, TheErrorLine) {
  EXPECT_EQ(atl::http::error_line(404), "Not Found");
  EXPECT_EQ(atl::http::error_line(503, "try later"), "Service Unavailable: try later");
}

TEST(Exchange, AnUpgradeIsRecordedThenRunsOverTheConnectionsBytes) {
  TestConn c("GET", "/chat");
  c.with_header("Connection", "Upgrade").with_header("Upgrade", "x-chat/2, other");
  c.with_upgrade_input("hi");
  bool pipeline_done = false;
  c.run([&pipeline_done](Conn& conn) -> Task<> {
    conn.upgrade("x-chat", {{"X-Session", "7"}}, [&pipeline_done](Conn::ByteStream& s) -> Task<> {
      EXPECT_TRUE(pipeline_done) << "the handler runs after the pipeline returned";
      auto in = co_await s.read();
      co_await s.write("echo:" + std::string(in.data(), in.size()));
      EXPECT_TRUE((co_await s.read()).empty());
    });
    EXPECT_EQ(conn.status(), 101);
    EXPECT_TRUE(conn.response_sent()) << "answered, as far as the pipeline goes";
    pipeline_done = true;
    co_return;
  });
  EXPECT_TRUE(c.upgraded());
  EXPECT_EQ(c.upgraded_output(), "echo:hi");
  EXPECT_EQ(c.response_header("X-Session"), "7");
}

TEST(Exchange, AnUpgradeTheClientDidNotAskForIsRefused) {
  TestConn c;
  c.run([](Conn& conn) -> Task<> {
    conn.upgrade("websocket", {}, [](Conn::ByteStream&) -> Task<> { co_return; });
    co_return;
  });
  EXPECT_EQ(c.status(), 500) << "a handler bug: it must check Upgrade first";
  EXPECT_FALSE(c.upgraded());
  TestConn bad("GET", "/");
  bad.with_header("Upgrade", "x");
  bad.run([](Conn& conn) -> Task<> {
    conn.upgrade("x", {{"Bad", "a\r\nb"}}, [](Conn::ByteStream&) -> Task<> { co_return; });
    co_return;
  });
  EXPECT_EQ(bad.status(), 500) << "a header that would split the 101 is refused";
}

TEST(Exchange, ALongResponseEndsWhenTheServerDrains) {
  auto events = [](Conn& conn) -> Task<> {
    co_await conn.begin_stream(200);
    for (int i = 0; i < 1000; ++i) {
      co_await conn.write_chunk("tick\n");
      EXPECT_NE(conn.drain_signal(), nullptr);
      if (!conn.drain_signal()) break;
      // An hour between events, unless the server drains first.
      if (!co_await atl::runtime::sleep_for(3'600'000, *conn.drain_signal())) break;
    }
    co_await conn.write_chunk("bye\n");
    co_await conn.end_stream();
  };
  TestConn c;
  c.with_draining();
  EXPECT_TRUE(c.draining());
  c.run(events);
  EXPECT_EQ(c.response_body(), "tick\nbye\n");
  EXPECT_FALSE(TestConn().draining());
}
