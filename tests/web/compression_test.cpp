// compression: each coding end to end over real HTTP (the test decodes with
// zlib, brotli and zstd and compares), negotiation by q-values, every case
// left alone, and streamed responses flushed chunk by chunk.
#include <atoll/web/compression.hpp>

#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <zlib.h>
#include <zstd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;
using web::ContentCoding;

namespace {

// Text that compresses, but not to nothing: words drawn by a small LCG.
std::string text(std::size_t n, unsigned seed = 7) {
  static const char* words[] = {"atoll ", "lagoon ", "reef ", "coral ",
                                "tide ",  "palm ",   "surf ", "sand\n"};
  std::string s;
  while (s.size() < n) {
    seed = seed * 1103515245u + 12345u;
    s += words[(seed >> 16) % 8];
  }
  s.resize(n);
  return s;
}

std::string noise(std::size_t n, unsigned seed = 3) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1103515245u + 12345u;
    c = char(seed >> 24);
  }
  return s;
}

// A streaming decoder for one coding: feed() returns what the bytes so far
// decode to; done() says the coded stream ended properly.
class Decoder {
 public:
  explicit Decoder(const std::string& coding) : coding_(coding) {
    if (coding == "gzip") {
      if (inflateInit2(&z_, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2");
    } else if (coding == "br") {
      br_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
    } else if (coding == "zstd") {
      zs_ = ZSTD_createDStream();
      ZSTD_initDStream(zs_);
    } else {
      throw std::invalid_argument("no decoder for '" + coding + "'");
    }
  }
  ~Decoder() {
    if (coding_ == "gzip") inflateEnd(&z_);
    if (br_) BrotliDecoderDestroyInstance(br_);
    if (zs_) ZSTD_freeDStream(zs_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  std::string feed(const std::string& in) {
    std::string out;
    char buf[16384];
    if (coding_ == "gzip") {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z_.avail_in = uInt(in.size());
      for (;;) {
        z_.next_out = reinterpret_cast<Bytef*>(buf);
        z_.avail_out = sizeof buf;
        int rc = inflate(&z_, Z_SYNC_FLUSH);
        out.append(buf, sizeof buf - z_.avail_out);
        if (rc == Z_STREAM_END) {
          done_ = true;
          break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("inflate failed");
        if (z_.avail_in == 0 && z_.avail_out != 0) break;
      }
    } else if (coding_ == "br") {
      const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
      std::size_t avail_in = in.size();
      for (;;) {
        auto* next_out = reinterpret_cast<std::uint8_t*>(buf);
        std::size_t avail_out = sizeof buf;
        auto rc =
            BrotliDecoderDecompressStream(br_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
        out.append(buf, sizeof buf - avail_out);
        if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
          done_ = true;
          break;
        }
        if (rc == BROTLI_DECODER_RESULT_ERROR) throw std::runtime_error("brotli decode failed");
        if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) break;
      }
    } else {
      ZSTD_inBuffer input{in.data(), in.size(), 0};
      for (;;) {
        ZSTD_outBuffer output{buf, sizeof buf, 0};
        std::size_t rc = ZSTD_decompressStream(zs_, &output, &input);
        if (ZSTD_isError(rc)) throw std::runtime_error("zstd decode failed");
        out.append(buf, output.pos);
        if (rc == 0) done_ = true;
        if (input.pos == input.size && output.pos < output.size) break;
      }
    }
    return out;
  }
  bool done() const noexcept { return done_; }

 private:
  std::string coding_;
  z_stream z_{};
  BrotliDecoderState* br_ = nullptr;
  ZSTD_DStream* zs_ = nullptr;
  bool done_ = false;
};

std::string decode(const std::string& coding, const std::string& body, bool* complete = nullptr) {
  Decoder d(coding);
  std::string out = d.feed(body);
  if (complete) *complete = d.done();
  return out;
}

// Reads a response a piece at a time from a raw socket: the head, then one
// HTTP chunk after another.
class ChunkReader {
 public:
  explicit ChunkReader(int fd) : fd_(fd) {}
  std::optional<HttpReply> head() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    HttpReply r = parse_head(buf_.substr(0, end + 4));
    buf_.erase(0, end + 4);
    return r;
  }
  /// The next chunk's data; "" for the last chunk; nullopt on EOF or timeout.
  std::optional<std::string> chunk() {
    std::size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    std::size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
    while (buf_.size() < eol + 2 + size + 2)
      if (!fill()) return std::nullopt;
    std::string data = buf_.substr(eol + 2, size);
    buf_.erase(0, eol + 2 + size + 2);
    return data;
  }

 private:
  bool fill() {
    if (!readable_within(fd_, 10'000)) return false;
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, std::size_t(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

// /text?n=N sends N bytes of text; other paths exercise one case each.
Task<> app(http::Conn& c) {
  std::string_view p = c.path();
  std::size_t n = 64 * 1024;
  if (auto q = c.query().get("n")) n = std::stoul(std::string(*q));
  c.set_header("Content-Type", "text/plain; charset=utf-8");
  if (p == "/text") {
    co_await c.send(200, text(n));
  } else if (p == "/json") {
    c.set_header("Content-Type", "application/json");
    co_await c.send(200, "[" + std::string(n, '1') + "]");
  } else if (p == "/png") {
    c.set_header("Content-Type", "image/png");
    co_await c.send(200, text(n));
  } else if (p == "/untyped") {
    c.response_headers().remove("Content-Type");
    co_await c.send(200, text(n));
  } else if (p == "/encoded") {
    c.set_header("Content-Encoding", "gzip");
    co_await c.send(200, text(n));
  } else if (p == "/no-transform") {
    c.set_header("Cache-Control", "public, no-transform");
    co_await c.send(200, text(n));
  } else if (p == "/etag") {
    c.set_header("ETag", "\"v1\"");
    co_await c.send(200, text(n));
  } else if (p == "/noise") {
    co_await c.send(200, noise(n));
  } else if (p == "/204") {
    co_await c.send(204, "");
  } else if (p == "/304") {
    co_await c.send(304, "");
  } else if (p == "/echo") {
    std::string body = co_await c.read_body();
    co_await c.send(200, body);
  } else if (p == "/stream") {
    // Part one goes out; part two waits for the request body, which the
    // client sends only after decoding part one: proof of the flush.
    co_await c.begin_stream(200);
    co_await c.write_chunk(text(5000, 1));
    std::string go = co_await c.read_body();
    co_await c.write_chunk(text(7000, 2) + go);
    co_await c.end_stream();
  } else if (p == "/stream-left-open") {
    co_await c.begin_stream(200);
    co_await c.write_chunk(text(3000, 4));
    // returns without end_stream(): the middleware must finish the coded stream
  } else if (p == "/fail") {
    throw http::HttpError(409, "conflict, as asked");
  } else {
    co_await c.send(404, "no such case\n");
  }
}

HttpReply get(std::uint16_t port, const std::string& target,
              const std::string& accept = "gzip, br, zstd", const std::string& method = "GET") {
  std::vector<std::string> h;
  if (!accept.empty()) h.push_back("Accept-Encoding: " + accept);
  return request(port, method, target, h);
}

struct Server : HttpTestServer {
  explicit Server(web::CompressionOptions o = {})
      : HttpTestServer(web::pipeline({web::compression(std::move(o))}, app)) {}
};

}  // namespace

TEST(Compression, EachCodingRoundTrips) {
  Server s;
  std::string original = text(64 * 1024);
  for (std::string coding : {"br", "zstd", "gzip"}) {
    SCOPED_TRACE(coding);
    auto r = get(s.port(), "/text", coding);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-encoding"), coding);
    EXPECT_EQ(r.header("vary"), "Accept-Encoding");
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    EXPECT_LT(r.body.size(), original.size() / 3);
    bool complete = false;
    EXPECT_TRUE(decode(coding, r.body, &complete) == original);
    EXPECT_TRUE(complete);
  }
}

TEST(Compression, JsonIsCompressedToo) {
  Server s;
  auto r = get(s.port(), "/json?n=5000", "gzip");
  EXPECT_EQ(r.header("content-encoding"), "gzip");
  EXPECT_EQ(decode("gzip", r.body), "[" + std::string(5000, '1') + "]");
}

TEST(Compression, NegotiatesByQValueThenServerPreference) {
  Server s;
  auto coding_for = [&](const std::string& accept) {
    return get(s.port(), "/text", accept).header("content-encoding");
  };
  EXPECT_EQ(coding_for("gzip, deflate, br, zstd"), "br");  // a tie: br > zstd > gzip
  EXPECT_EQ(coding_for("zstd, gzip"), "zstd");
  EXPECT_EQ(coding_for("gzip;q=1.0, br;q=0.5, zstd;q=0.8"), "gzip");
  EXPECT_EQ(coding_for("br;q=0, *"), "zstd");
  EXPECT_EQ(coding_for("*;q=0.1, gzip;q=0.2"), "gzip");
  EXPECT_EQ(coding_for("x-gzip"), "gzip");
  EXPECT_EQ(coding_for("GZIP ; Q=0.5"), "gzip");
  EXPECT_EQ(coding_for("identity"), "");
  EXPECT_EQ(coding_for("*;q=0"), "");
  EXPECT_EQ(coding_for("gzip;q=2"), "");  // not a qvalue: refused, not guessed
  EXPECT_EQ(coding_for("deflate"), "");
}

TEST(Compression, NegotiateCodingHonoursTheOfferedList) {
  const ContentCoding only_gzip[] = {ContentCoding::gzip};
  EXPECT_EQ(web::negotiate_coding("br, gzip;q=0.1", only_gzip), ContentCoding::gzip);
  EXPECT_EQ(web::negotiate_coding("br", only_gzip), std::nullopt);
  const ContentCoding gzip_first[] = {ContentCoding::gzip, ContentCoding::br};
  EXPECT_EQ(web::negotiate_coding("br, gzip", gzip_first), ContentCoding::gzip);
  EXPECT_EQ(web::negotiate_coding("", gzip_first), std::nullopt);
}

TEST(Compression, NoAcceptEncodingGetsIdentityButVary) {
  Server s;
  auto r = get(s.port(), "/text", "");
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_EQ(r.header("vary"), "Accept-Encoding");
  EXPECT_TRUE(r.body == text(64 * 1024));
}

TEST(Compression, SmallBodiesAreLeftAlone) {
  Server s;
  auto r = get(s.port(), "/text?n=1023");
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_EQ(r.body, text(1023));
  EXPECT_EQ(get(s.port(), "/text?n=1024").header("content-encoding"), "br");

  Server big_floor({.min_size = 100'000});
  EXPECT_FALSE(get(big_floor.port(), "/text").has("content-encoding"));
}

TEST(Compression, LeavesAloneWhatMustNotOrNeedNotBeCompressed) {
  Server s;
  auto png = get(s.port(), "/png");
  EXPECT_FALSE(png.has("content-encoding"));
  EXPECT_FALSE(png.has("vary"));
  EXPECT_FALSE(get(s.port(), "/untyped").has("content-encoding"));

  auto encoded = get(s.port(), "/encoded");
  EXPECT_EQ(encoded.header("content-encoding"), "gzip");
  EXPECT_EQ(encoded.count("content-encoding"), 1u);
  EXPECT_TRUE(encoded.body == text(64 * 1024));  // untouched, not coded twice

  auto nt = get(s.port(), "/no-transform");
  EXPECT_FALSE(nt.has("content-encoding"));
  EXPECT_TRUE(nt.body == text(64 * 1024));

  auto no_content = get(s.port(), "/204");
  EXPECT_EQ(no_content.status, 204);
  EXPECT_FALSE(no_content.has("content-encoding"));
  auto not_modified = get(s.port(), "/304");
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_FALSE(not_modified.has("content-encoding"));
}

TEST(Compression, HeadIsNotCompressedButVaries) {
  Server s;
  auto r = get(s.port(), "/text", "br", "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_EQ(r.header("vary"), "Accept-Encoding");
  EXPECT_EQ(r.header("content-length"), std::to_string(64 * 1024));
  EXPECT_EQ(r.body, "");
}

TEST(Compression, IncompressibleBodiesGoOutAsTheyAre) {
  Server s;
  auto r = get(s.port(), "/noise?n=20000", "gzip");
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_TRUE(r.body == noise(20000));
}

TEST(Compression, AStrongETagBecomesWeak) {
  Server s;
  EXPECT_EQ(get(s.port(), "/etag", "gzip").header("etag"), "W/\"v1\"");
  EXPECT_EQ(get(s.port(), "/etag", "").header("etag"), "\"v1\"");
}

TEST(Compression, StreamsAreFlushedChunkByChunk) {
  Server s;
  for (std::string coding : {"br", "zstd", "gzip"}) {
    SCOPED_TRACE(coding);
    UniqueFd fd(connect_tcp(s.port()));
    ASSERT_TRUE(fd);
    ASSERT_TRUE(
        send_all(fd.get(), "POST /stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + coding +
                               "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"));
    ChunkReader reader(fd.get());
    auto head = reader.head();
    ASSERT_TRUE(head);
    EXPECT_EQ(head->header("content-encoding"), coding);
    EXPECT_EQ(head->header("vary"), "Accept-Encoding");
    EXPECT_TRUE(head->chunked);
    EXPECT_FALSE(head->has("content-length"));
    Decoder d(coding);
    auto first = reader.chunk();
    ASSERT_TRUE(first);
    ASSERT_FALSE(first->empty());
    EXPECT_TRUE(d.feed(*first) == text(5000, 1)) << "the first write was not flushed whole";
    ASSERT_TRUE(send_all(fd.get(), "ok"));
    std::string rest;
    for (;;) {
      auto c = reader.chunk();
      ASSERT_TRUE(c);
      if (c->empty()) break;
      rest += d.feed(*c);
    }
    EXPECT_TRUE(rest == text(7000, 2) + "ok");
    EXPECT_TRUE(d.done());
  }
}

TEST(Compression, AStreamLeftOpenIsFinished) {
  Server s;
  auto r = get(s.port(), "/stream-left-open", "zstd");
  EXPECT_TRUE(r.chunked);
  EXPECT_EQ(r.header("content-encoding"), "zstd");
  bool complete = false;
  EXPECT_TRUE(decode("zstd", r.body, &complete) == text(3000, 4));
  EXPECT_TRUE(complete);
}

TEST(Compression, RequestBodiesAndErrorsPassThrough) {
  Server s;
  std::string body = text(10'000, 9);
  auto r = request(s.port(), "POST", "/echo", {"Accept-Encoding: gzip", "Content-Type: text/plain"},
                   body);
  EXPECT_EQ(r.header("content-encoding"), "gzip");
  EXPECT_TRUE(decode("gzip", r.body) == body);

  auto failed = get(s.port(), "/fail");
  EXPECT_EQ(failed.status, 409);
  EXPECT_EQ(failed.body, "conflict, as asked\n");
}

namespace {
struct Marker {
  std::string value;
};
}  // namespace

TEST(Compression, StateCrossesTheWrapperBothWays) {
  // Outside: sets an assign and a request id, and after the inner layers ran,
  // reports what they left. Inside: reads the outer state, sets its own.
  std::atomic<int> verdict{0};  // 0 not yet, 1 state came back, 2 it did not
  web::Middleware outer = [&verdict](http::Conn& c, const http::App& next) -> Task<> {
    c.assign<Marker>().value = "outer";
    c.request_id = "rid-1";
    c.set_header("X-Outer", "yes");
    co_await next(c);
    bool back =
        c.find_assign<Marker>()->value == "outer+inner" && c.request_id == "rid-2" && c.closing();
    verdict = back ? 1 : 2;
  };
  http::App inner = [](http::Conn& c) -> Task<> {
    std::string seen = "none";  // (no ?: with string temporaries in a coroutine: GCC 12)
    if (auto* m = c.find_assign<Marker>()) seen = m->value;
    c.assign<Marker>().value += "+inner";
    c.request_id = "rid-2";
    c.close_after_response();
    c.set_header("Content-Type", "text/plain");
    co_await c.send(200, seen + " " + c.request_id + " " + text(2000));
  };
  HttpTestServer s(web::pipeline({outer, web::compression()}, inner));
  auto r = get(s.port(), "/", "gzip");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-outer"), "yes");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(r.header("content-encoding"), "gzip");
  EXPECT_TRUE(decode("gzip", r.body) == "outer rid-2 " + text(2000));
  // The outer layer runs its tail on the server's thread: ask until it did.
  EXPECT_TRUE(wait_until([&] { return verdict.load() != 0; }));
  EXPECT_EQ(verdict.load(), 1);
}

TEST(Compression, RefusesLevelsOutsideTheCodecRange) {
  EXPECT_THROW(web::compression({.gzip_level = 0}), std::invalid_argument);
  EXPECT_THROW(web::compression({.brotli_quality = 12}), std::invalid_argument);
  EXPECT_THROW(web::compression({.zstd_level = 22}), std::invalid_argument);
  EXPECT_THROW(web::compression({.stream_window_bits = 30}), std::invalid_argument);
}

TEST(Compression, CompressibleTypes) {
  for (auto t :
       {"text/html; charset=utf-8", "TEXT/CSS", "application/json", "application/problem+json",
        "application/javascript", "image/svg+xml", "application/xml", "application/wasm"})
    EXPECT_TRUE(web::compressible_type(t)) << t;
  for (auto t :
       {"", "image/png", "application/octet-stream", "video/mp4", "application/zip", "font/woff2"})
    EXPECT_FALSE(web::compressible_type(t)) << t;
}
