// body_parser: JSON, URL-encoded and multipart bodies over real HTTP (curl
// builds one multipart form, raw requests the rest), and every error with
// its status: 400 malformed, 413 over a limit, 415 unsupported.
#include <atoll/web/body_parser.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;
using web::ParsedBody;

namespace {

// Describes what the parser left: the kind, then the JSON, fields and files.
Task<> describe(http::Conn& c) {
  const ParsedBody* p = c.find_assign<ParsedBody>();
  std::string out;
  if (!p) {
    out = "unparsed\n";
  } else {
    static const char* kinds[] = {"none", "json", "form", "multipart"};
    out = std::string(kinds[int(p->kind)]) + "\n";
    if (p->kind == ParsedBody::Kind::json) out += p->json.dump() + "\n";
    for (const auto& [k, v] : p->fields) out += "field " + k + "=" + v + "\n";
    for (const auto& f : p->files) {
      out += "file " + f.field + " '" + f.filename + "' " + f.content_type + " " +
             std::to_string(f.data.size());
      if (f.data.size() <= 64)
        out += " " + f.data;  // (no ?: with temporaries in a coroutine: GCC 12)
      out += "\n";
    }
  }
  if (p && p->kind == ParsedBody::Kind::none && c.has_body()) {
    std::string raw = co_await c.read_body();
    out += "raw " + raw + "\n";
  }
  co_await c.send(200, out);
}

struct Server : HttpTestServer {
  explicit Server(web::BodyParserOptions o = {})
      : HttpTestServer(web::pipeline({web::body_parser(std::move(o))}, describe)) {}
};

HttpReply post(std::uint16_t port, const std::string& type, const std::string& body,
               std::vector<std::string> headers = {}) {
  if (!type.empty()) headers.push_back("Content-Type: " + type);
  return request(port, "POST", "/", headers, body);
}

std::string multipart(const std::string& boundary, const std::vector<std::string>& parts,
                      const std::string& preamble = "", const std::string& epilogue = "") {
  std::string body = preamble;
  for (const auto& p : parts) body += "--" + boundary + "\r\n" + p + "\r\n";
  return body + "--" + boundary + "--\r\n" + epilogue;
}

std::string field_part(const std::string& name, const std::string& value) {
  return "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value;
}

}  // namespace

// --- JSON ---------------------------------------------------------------------

TEST(BodyParser, Json) {
  Server s;
  auto r =
      post(s.port(), "application/json; charset=utf-8", R"({"a": [1, 2, {"b": null}], "c": "é"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "json\n{\"a\":[1,2,{\"b\":null}],\"c\":\"é\"}\n");
  EXPECT_EQ(post(s.port(), "application/problem+json", "[true]").body, "json\n[true]\n");
}

TEST(BodyParser, JsonArrivingChunked) {
  Server s;
  auto r = http_exchange(
      s.port(),
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"k\"\r\n3\r\n:42\r\n1\r\n}\r\n0\r\n\r\n");
  EXPECT_EQ(r.body, "json\n{\"k\":42}\n");
}

TEST(BodyParser, MalformedJsonIs400AndSaysWhere) {
  Server s;
  auto r = post(s.port(), "application/json", "{\"a\": 1,\n \"b\": }");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed JSON body: parse error at line 2, column 7"), std::string::npos)
      << r.body;
  EXPECT_EQ(post(s.port(), "application/json", "[1, 2").status, 400);
  EXPECT_EQ(post(s.port(), "application/json", "\"\xff\"").status, 400);  // not UTF-8
}

TEST(BodyParser, JsonLimits) {
  Server s({.json_limit = 100, .max_json_depth = 8});
  auto big = post(s.port(), "application/json", "[\"" + std::string(200, 'x') + "\"]");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("over the limit of 100 bytes"), std::string::npos) << big.body;
  auto deep = post(s.port(), "application/json", std::string(9, '[') + std::string(9, ']'));
  EXPECT_EQ(deep.status, 413);
  EXPECT_NE(deep.body.find("nested deeper than 8 levels"), std::string::npos) << deep.body;
  // Brackets inside strings are text, not nesting.
  EXPECT_EQ(post(s.port(), "application/json", "[\"[[[[[[[[[[[[\"]").status, 200);
  EXPECT_EQ(post(s.port(), "application/json", std::string(8, '[') + std::string(8, ']')).status,
            200);
}

TEST(BodyParser, JsonInAnotherCharsetIs415) {
  Server s;
  EXPECT_EQ(post(s.port(), "application/json; charset=latin1", "{}").status, 415);
}

// --- forms ------------------------------------------------------------------------

TEST(BodyParser, UrlEncodedForm) {
  Server s;
  auto r = post(s.port(), "application/x-www-form-urlencoded",
                "a=1&b=hello+world&&c=%C3%A9%26&flag&a=2");
  EXPECT_EQ(r.body, "form\nfield a=1\nfield b=hello world\nfield c=é&\nfield flag=\nfield a=2\n");
}

TEST(BodyParser, BadPercentEscapeIs400) {
  Server s;
  auto r = post(s.port(), "application/x-www-form-urlencoded", "ok=1&bad=%G1");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("bad percent-escape at byte 9"), std::string::npos) << r.body;
  EXPECT_EQ(post(s.port(), "application/x-www-form-urlencoded", "x=%4").status, 400);
}

TEST(BodyParser, FormLimits) {
  Server s({.form_limit = 64, .max_fields = 3});
  EXPECT_EQ(
      post(s.port(), "application/x-www-form-urlencoded", "a=" + std::string(100, 'x')).status,
      413);
  auto many = post(s.port(), "application/x-www-form-urlencoded", "a=1&b=2&c=3&d=4");
  EXPECT_EQ(many.status, 413);
  EXPECT_NE(many.body.find("more than 3 fields"), std::string::npos) << many.body;
  EXPECT_EQ(post(s.port(), "application/x-www-form-urlencoded", "a=1&b=2&c=3").status, 200);
}

// --- multipart ----------------------------------------------------------------------

TEST(BodyParser, MultipartFieldsAndFiles) {
  Server s;
  std::string body =
      multipart("XyZ",
                {field_part("title", "Hello"),
                 "Content-Disposition: form-data; name=\"doc\"; filename=\"a \\\"b\\\".txt\"\r\n"
                 "Content-Type: text/plain\r\n\r\nline 1\r\nline 2",
                 "Content-Disposition: form-data; name=\"blob\"; filename=\"x.bin\"\r\n\r\n" +
                     std::string("\0\1\2", 3),
                 field_part("title", "")},
                "this is a preamble\r\n", "and an epilogue");
  auto r = post(s.port(), "multipart/form-data; boundary=XyZ", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "multipart\nfield title=Hello\nfield title=\n"
            "file doc 'a \"b\".txt' text/plain 14 line 1\r\nline 2\n"
            "file blob 'x.bin' application/octet-stream 3 " +
                std::string("\0\1\2", 3) + "\n");
}

TEST(BodyParser, MultipartFromCurl) {
  // A form as a real client builds it: curl picks its own boundary.
  Server s;
  std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string path = dir + "/upload.txt";
  std::string content(100'000, 'u');
  content += "\r\n--not-the-boundary\r\n";
  std::ofstream(path, std::ios::binary) << content;
  std::string cmd = "curl -s --max-time 10 -F 'name=Ada Lovelace' -F 'upload=@" + path +
                    ";type=text/plain' http://127.0.0.1:" + std::to_string(s.port()) + "/ 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  EXPECT_EQ(::pclose(pipe), 0) << out;
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  EXPECT_EQ(out, "multipart\nfield name=Ada Lovelace\nfile upload 'upload.txt' text/plain " +
                     std::to_string(content.size()) + "\n");
}

TEST(BodyParser, MultipartExtendedFilename) {
  Server s;
  auto r = post(
      s.port(), "multipart/form-data; boundary=\"b b\"",
      multipart(
          "b b",
          {"Content-Disposition: form-data; name=f; filename*=UTF-8''na%C3%AFve.txt\r\n\r\nx"}));
  EXPECT_EQ(r.body, "multipart\nfile f 'naïve.txt' application/octet-stream 1 x\n");
}

TEST(BodyParser, MalformedMultipartIs400) {
  Server s;
  auto expect_400 = [&](const std::string& type, const std::string& body, const std::string& says) {
    auto r = post(s.port(), type, body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
  };
  std::string type = "multipart/form-data; boundary=B";
  expect_400("multipart/form-data", multipart("B", {field_part("a", "1")}), "needs a boundary");
  expect_400(type, "--B\r\n" + field_part("a", "1") + "\r\n",
             "without the closing boundary '--B--'");
  expect_400(type, "no delimiter here", "no boundary line '--B'");
  expect_400(type, multipart("B", {"Content-Disposition: form-data\r\n\r\nx"}),
             "part 1 has no name");
  expect_400(type, multipart("B", {field_part("a", "1"), "Content-Type: text/plain\r\n\r\nx"}),
             "part 2 has no Content-Disposition");
  expect_400(type, multipart("B", {"Content-Disposition: attachment; name=a\r\n\r\nx"}),
             "not 'form-data'");
  expect_400(type, multipart("B", {"Content-Disposition: form-data; name=\"a\r\n\r\nx"}),
             "malformed Content-Disposition");
  expect_400(type, "--B\r\nContent-Disposition: form-data; name=a", "do not end");
  expect_400(type, multipart("B", {"Content-Disposition: form-data;\r\n name=a\r\n\r\nx"}),
             "folded header");
}

TEST(BodyParser, MultipartLimits) {
  Server s({.multipart_limit = 4096,
            .max_parts = 3,
            .max_field_size = 10,
            .max_file_size = 20,
            .max_part_header = 100});
  std::string type = "multipart/form-data; boundary=B";
  auto status = [&](const std::string& body) { return post(s.port(), type, body); };
  auto parts = status(multipart("B", {field_part("a", "1"), field_part("b", "2"),
                                      field_part("c", "3"), field_part("d", "4")}));
  EXPECT_EQ(parts.status, 413);
  EXPECT_NE(parts.body.find("more than 3 parts"), std::string::npos) << parts.body;
  auto field = status(multipart("B", {field_part("long", std::string(11, 'x'))}));
  EXPECT_EQ(field.status, 413);
  EXPECT_NE(field.body.find("form field 'long' is over the limit of 10 bytes"), std::string::npos)
      << field.body;
  auto file = status(multipart(
      "B", {"Content-Disposition: form-data; name=f; filename=a\r\n\r\n" + std::string(21, 'x')}));
  EXPECT_EQ(file.status, 413);
  EXPECT_NE(file.body.find("uploaded file 'f' is over the limit of 20 bytes"), std::string::npos)
      << file.body;
  auto header = status(
      multipart("B", {"X-Filler: " + std::string(200, 'h') + "\r\n" + field_part("a", "1")}));
  EXPECT_EQ(header.status, 413);
  EXPECT_EQ(status(multipart("B", {field_part("a", std::string(5000, 'x'))})).status,
            413);  // the whole body
  EXPECT_EQ(
      status(multipart("B", {field_part("a", "1"), field_part("b", "2"), field_part("c", "3")}))
          .status,
      200);
}

TEST(BodyParser, ItsLimitReplacesTheServersBodyLimit) {
  // The server takes 1 KiB bodies; the parser's 64 KiB form limit wins.
  HttpTestServer s(web::pipeline({web::body_parser()}, describe), {.max_body = 1024});
  std::string value(10'000, 'v');
  auto r = post(s.port(), "application/x-www-form-urlencoded", "big=" + value);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "form\nfield big=" + value + "\n");
}

// --- types -------------------------------------------------------------------------

TEST(BodyParser, OtherTypesAreLeftForTheHandler) {
  Server s;
  EXPECT_EQ(post(s.port(), "text/plain", "just text").body, "none\nraw just text\n");
  EXPECT_EQ(post(s.port(), "", "untyped").body, "none\nraw untyped\n");
  EXPECT_EQ(request(s.port(), "GET", "/").body, "none\n");
  // A type whose parser is off is not parsed either.
  Server no_json({.json = false});
  EXPECT_EQ(post(no_json.port(), "application/json", "{}").body, "none\nraw {}\n");
}

TEST(BodyParser, RequiredRefusesOtherTypesWith415) {
  Server s({.form = false, .required = true});
  auto r = post(s.port(), "text/plain", "x");
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("unsupported Content-Type 'text/plain'; this endpoint takes "
                        "application/json, multipart/form-data"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(post(s.port(), "application/x-www-form-urlencoded", "a=1").status, 415);
  EXPECT_EQ(post(s.port(), "", "x").status, 415);
  EXPECT_EQ(request(s.port(), "GET", "/").status, 200);  // no body, nothing required
  EXPECT_EQ(post(s.port(), "application/json", "1").status, 200);
}

TEST(BodyParser, CompressedRequestBodiesAre415) {
  Server s;
  auto r = post(s.port(), "application/json", "{}", {"Content-Encoding: gzip"});
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("Content-Encoding 'gzip' is not accepted"), std::string::npos) << r.body;
}

TEST(BodyParser, ParsesOnce) {
  // Parsed by the middleware, then asked again in the handler: the second
  // call finds the result and reads nothing.
  http::App app = [](http::Conn& c) -> Task<> {
    co_await web::parse_body(c);
    co_await describe(c);
  };
  HttpTestServer s(web::pipeline({web::body_parser()}, app));
  EXPECT_EQ(post(s.port(), "application/json", "[1]").body, "json\n[1]\n");
}

// --- without a connection -----------------------------------------------------------

TEST(BodyParser, ParsesBytesInMemory) {
  auto form = web::parse_body_bytes("application/x-www-form-urlencoded", "a=1&b=x+y");
  EXPECT_EQ(form.kind, ParsedBody::Kind::form);
  EXPECT_EQ(form.field("b"), "x y");

  auto parts = web::parse_body_bytes("multipart/form-data; boundary=B",
                                     multipart("B", {field_part("n", "v")}));
  EXPECT_EQ(parts.kind, ParsedBody::Kind::multipart);
  EXPECT_EQ(parts.field("n"), "v");

  EXPECT_EQ(web::parse_body_bytes("text/plain", "x").kind, ParsedBody::Kind::none);
  EXPECT_EQ(web::parse_body_bytes("application/json", "[1]").json, nlohmann::json::array({1}));
}

TEST(BodyParser, BytesInMemoryKeepTheErrorsAndLimits) {
  auto status = [](std::string_view type, std::string_view body, web::BodyParserOptions o = {}) {
    try {
      web::parse_body_bytes(type, body, o);
      return 200;
    } catch (const http::HttpError& e) {
      return e.status();
    }
  };
  EXPECT_EQ(status("application/x-www-form-urlencoded", "a=%zz"), 400);
  EXPECT_EQ(status("application/x-www-form-urlencoded", "a=12345", {.form_limit = 4}), 413);
  EXPECT_EQ(status("multipart/form-data", "--B\r\n"), 400);  // no boundary parameter
  EXPECT_EQ(status("application/json; charset=latin1", "1"), 415);
  EXPECT_EQ(status("text/plain", "x", {.required = true}), 415);
  EXPECT_EQ(status("text/plain; =x", "x"), 400);
}
