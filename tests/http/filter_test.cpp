// Response filters (Conn::Filter): the chain between a handler and the
// transport, through http::TestConn.
#include <atoll/http/exchange.hpp>
#include <atoll/http/test_conn.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

using atl::Task;
using atl::http::Conn;
using atl::http::TestConn;

namespace {

// Wraps every body and piece in its tag: "[a:...]".
struct Tag final : Conn::Filter {
  std::string name;
  bool rewrite_streams = true;
  explicit Tag(std::string n) : name(std::move(n)) {}
  bool whole(Conn& c, int, std::string_view body, std::string& out) override {
    out = "[" + name + ":" + std::string(body) + "]";
    c.response_headers().add("X-Filtered", name);
    return true;
  }
  bool begin(Conn&, int) override { return rewrite_streams; }
  void write(std::string_view in, bool last, std::string& out) override {
    if (!in.empty()) out = name + "(" + std::string(in) + ")";
    if (last) out += name + ".";
  }
};

// Adds `f` for the rest of the pipeline, as a middleware does.
atl::http::App with(Conn::Filter& f, atl::http::App next) {
  return [&f, next](Conn& c) -> Task<> {
    Conn::ScopedFilter scoped(c, f);
    co_await next(c);
    if (c.streaming()) co_await c.end_stream();
  };
}

}  // namespace

TEST(Filters, InnerFiltersRunFirst) {
  Tag outer("outer"), inner("inner");
  TestConn c;
  c.run(with(outer, with(inner, [](Conn& conn) -> Task<> { co_await conn.send(200, "x"); })));
  EXPECT_EQ(c.response_body(), "[outer:[inner:x]]");
  auto list = c.response_header_list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].second, "inner");
  EXPECT_EQ(list[1].second, "outer");
}

TEST(Filters, StreamsPassEveryActiveFilter) {
  Tag outer("o"), inner("i");
  inner.rewrite_streams = false;  // this one leaves streams alone
  TestConn c;
  c.run(with(outer, with(inner, [](Conn& conn) -> Task<> {
               co_await conn.begin_stream(200);
               co_await conn.write_chunk("a");
               co_await conn.write_chunk("b");
             })));
  EXPECT_EQ(c.chunks(), (std::vector<std::string>{"o(a)", "o(b)", "o."}));
}

TEST(Filters, ARemovedFilterIsGone) {
  Tag tag("t");
  TestConn c;
  c.run([&tag](Conn& conn) -> Task<> {
    conn.add_filter(tag);
    conn.remove_filter(tag);
    co_await conn.send(200, "plain");
  });
  EXPECT_EQ(c.response_body(), "plain");
}

TEST(Filters, ThereIsALimit) {
  std::vector<Tag> tags(Conn::max_filters + 1, Tag("t"));
  TestConn c;
  c.run([&tags](Conn& conn) -> Task<> {
    for (std::size_t i = 0; i < Conn::max_filters; ++i) conn.add_filter(tags[i]);
    EXPECT_THROW(conn.add_filter(tags.back()), std::length_error);
    for (auto& t : tags) conn.remove_filter(t);  // (one never added: a no-op)
    co_await conn.send(200, "ok");
  });
  EXPECT_EQ(c.response_body(), "ok");
}

TEST(Filters, AnErrorPageIsNotFiltered) {
  Tag tag("t");
  TestConn c;
  c.run(with(tag, [](Conn&) -> Task<> {
    throw atl::http::HttpError(404, "gone");
    co_return;
  }));
  EXPECT_EQ(c.status(), 404);
  EXPECT_EQ(c.response_body(), "gone\n") << "the filter left with its middleware";
}
