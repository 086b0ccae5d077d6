// Router matching cost with 10 and 1,000 routes (Google Benchmark).
// The goal: the cost follows the path's depth, not the number of routes.
#include <atoll/web/router.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

atl::web::Router make_router(int n) {
  atl::web::Router r;
  auto h = [](atl::http::Conn&) -> atl::Task<> { co_return; };
  for (int i = 0; i < n; ++i) {
    std::string base = "/api/v1/resource" + std::to_string(i);
    r.get(base, h).get(base + "/:id", h).post(base + "/:id/items", h);
  }
  r.get("/static/*path", h);
  return r;
}

void match(benchmark::State& state, const char* path) {
  auto r = make_router(int(state.range(0)) / 3);
  std::vector<std::pair<std::string_view, std::string>> params;
  params.reserve(4);
  for (auto _ : state) {
    params.clear();
    auto m = r.match("GET", {}, path, params);
    benchmark::DoNotOptimize(m.handler);
  }
}

void static_route(benchmark::State& s) { match(s, "/api/v1/resource3"); }
void param_route(benchmark::State& s) { match(s, "/api/v1/resource3/12345"); }
void glob_route(benchmark::State& s) { match(s, "/static/css/site/main.css"); }
void miss(benchmark::State& s) { match(s, "/api/v2/nothing/here"); }

}  // namespace

BENCHMARK(static_route)->Arg(10)->Arg(1000);
BENCHMARK(param_route)->Arg(10)->Arg(1000);
BENCHMARK(glob_route)->Arg(10)->Arg(1000);
BENCHMARK(miss)->Arg(10)->Arg(1000);
BENCHMARK_MAIN();
