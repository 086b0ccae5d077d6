// access log: one line per request in JSON or combined format, written off
// the loop; a log that cannot be written (a full disk) never stops serving.
#include <atoll/web/access_log.hpp>
#include <atoll/web/request_id.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

Task<> hello(http::Conn& c) {
  if (c.path() == "/missing") {
    co_await c.send(404, "no\n");
    co_return;
  }
  co_await c.send(200, "hello, log\n");
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path +
         " HTTP/1.1\r\nHost: logs.test\r\nConnection: close\r\nUser-Agent: tester/1\r\n" + extra +
         "\r\n";
}

}  // namespace

TEST(AccessLog, OneJsonLinePerRequestWithTheRequestId) {
  std::string path = make_temp_dir() + "/access.log";
  auto sink = std::make_shared<web::AccessLogSink>(web::AccessLogOptions{.path = path});
  {
    HttpTestServer server(web::pipeline(
        {web::request_id(), web::access_log(sink, web::AccessLogOptions::Format::json)}, hello));
    EXPECT_EQ(http_exchange(server.port(), get("/a?x=1", "X-Request-Id: rid-1\r\n")).status, 200);
    EXPECT_EQ(http_exchange(server.port(), get("/missing")).status, 404);
  }
  sink->flush();
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["method"], "GET");
  EXPECT_EQ(first["target"], "/a?x=1");
  EXPECT_EQ(first["status"], 200);
  EXPECT_EQ(first["bytes"], 11);
  EXPECT_EQ(first["request_id"], "rid-1");
  EXPECT_EQ(first["host"], "logs.test");
  EXPECT_EQ(first["user_agent"], "tester/1");
  EXPECT_EQ(first["peer"], "127.0.0.1");
  EXPECT_GE(first["duration_ms"].get<double>(), 0.0);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["status"], 404);
}

TEST(AccessLog, CombinedFormatKeepsEachLineOneLine) {
  std::string path = make_temp_dir() + "/access.log";
  auto sink = std::make_shared<web::AccessLogSink>(web::AccessLogOptions{.path = path});
  {
    HttpTestServer server(
        web::pipeline({web::access_log(sink, web::AccessLogOptions::Format::combined)}, hello));
    EXPECT_EQ(http_exchange(server.port(), get("/b", "Referer: http://x/\"quoted\"\r\n")).status,
              200);
  }
  sink->flush();
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("127.0.0.1 - - [", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("\"GET /b HTTP/1.1\" 200 11 \"http://x/\\\"quoted\\\"\" \"tester/1\""),
            std::string::npos)
      << lines[0];
}

TEST(AccessLog, AFullDiskNeverStopsServing) {
  // /dev/full refuses every write with ENOSPC, like a full disk.
  auto sink = std::make_shared<web::AccessLogSink>(
      web::AccessLogOptions{.path = "/dev/full", .flush_ms = 1});
  HttpTestServer server(
      web::pipeline({web::access_log(sink, web::AccessLogOptions::Format::json)}, hello));
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(http_exchange(server.port(), get("/")).status, 200) << "request " << i;
  sink->flush();
  EXPECT_EQ(sink->dropped(), 50u);
}

TEST(AccessLog, AFullQueueDropsLinesInsteadOfWaiting) {
  std::string dir = make_temp_dir();
  auto sink = std::make_shared<web::AccessLogSink>(web::AccessLogOptions{
      .path = dir + "/a.log", .max_pending = 1});  // every line is over the limit
  HttpTestServer server(
      web::pipeline({web::access_log(sink, web::AccessLogOptions::Format::json)}, hello));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(http_exchange(server.port(), get("/")).status, 200);
  sink->flush();
  EXPECT_EQ(sink->dropped(), 5u);
}

TEST(AccessLog, AnUnwritablePathIsAClearError) {
  try {
    web::AccessLogSink sink({.path = "/nonexistent-dir/x/access.log"});
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x/access.log"), std::string::npos)
        << e.what();
  }
}
