// The host's /metrics: requests by site and status, bytes, latency, the
// resolver cache and every worker's connections, in Prometheus text.
#include "host/host_impl.hpp"

namespace atl::host {

void Host::Impl::count(const SiteEntry* site, int status, std::uint64_t bytes, double ms) {
  if (site && site->metrics) {
    std::size_t slot = counted_codes.size();
    for (std::size_t i = 0; i < counted_codes.size(); ++i)
      if (counted_codes[i] == status) slot = i;
    site->metrics->by_code[slot].fetch_add(1, std::memory_order_relaxed);
    site->metrics->bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  std::size_t b = 0;
  while (b < latency_buckets_ms.size() && ms > latency_buckets_ms[b]) ++b;
  shared->latency[b].fetch_add(1, std::memory_order_relaxed);
  shared->latency_count.fetch_add(1, std::memory_order_relaxed);
  shared->latency_sum_ns.fetch_add(std::uint64_t(ms * 1e6), std::memory_order_relaxed);
}

std::string Host::metrics(const net::ServerInfo* server) const {
  SharedState& sh = *impl_->shared;
  if (server) impl_->store_worker_stats(*server);  // this worker's own figures, fresh
  std::string out;
  out +=
      "# HELP atoll_requests_total Requests answered, by site and status (every worker).\n"
      "# TYPE atoll_requests_total counter\n";
  std::string bytes =
      "# HELP atoll_response_bytes_total Body bytes sent, by site.\n# TYPE "
      "atoll_response_bytes_total counter\n";
  sh.for_each_site([&](std::string_view name, const SiteCounters& m) {
    for (std::size_t i = 0; i <= counted_codes.size(); ++i) {
      std::uint64_t n = m.by_code[i].load(std::memory_order_relaxed);
      if (!n) continue;
      std::string code = i < counted_codes.size() ? std::to_string(counted_codes[i]) : "other";
      out += fmt::format("atoll_requests_total{{site=\"{}\",status=\"{}\"}} {}\n", name, code, n);
    }
    bytes += fmt::format("atoll_response_bytes_total{{site=\"{}\"}} {}\n", name,
                         m.bytes.load(std::memory_order_relaxed));
  });
  out += bytes;
  out +=
      "# HELP atoll_request_duration_seconds Time to answer a request.\n# TYPE "
      "atoll_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_buckets_ms.size(); ++i) {
    cumulative += sh.latency[i].load(std::memory_order_relaxed);
    out += fmt::format("atoll_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       latency_buckets_ms[i] / 1000, cumulative);
  }
  cumulative += sh.latency[latency_buckets_ms.size()].load(std::memory_order_relaxed);
  out += fmt::format("atoll_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("atoll_request_duration_seconds_sum {:.6f}\n",
                     double(sh.latency_sum_ns.load(std::memory_order_relaxed)) / 1e9);
  out += fmt::format("atoll_request_duration_seconds_count {}\n", sh.latency_count.load());
  auto counter = [&](std::string_view name, const std::atomic<std::uint64_t>& v) {
    out += fmt::format("# TYPE {0} counter\n{0} {1}\n", name, v.load(std::memory_order_relaxed));
  };
  counter("atoll_cache_hits_total", sh.cache_hits);
  counter("atoll_cache_misses_total", sh.cache_misses);
  counter("atoll_database_errors_total", sh.db_errors);
  counter("atoll_unknown_host_total", sh.unknown_host);

  // Per worker: what each published at its last poll (this one: just now).
  std::string conns =
      "# HELP atoll_connections Open connections, by worker.\n# TYPE atoll_connections gauge\n";
  std::string lag =
      "# HELP atoll_loop_lag_seconds Worst loop lag of each worker over the last 10-20 s.\n"
      "# TYPE atoll_loop_lag_seconds gauge\n";
  std::uint64_t accepted = 0, stalls = 0;
  bool any = false;
  for (std::size_t w = 0; w < sh.workers.size(); ++w) {
    const auto& slot = sh.workers[w];
    std::int32_t pid = slot.pid.load(std::memory_order_acquire);
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) continue;
    any = true;
    conns += fmt::format("atoll_connections{{worker=\"{}\"}} {}\n", w,
                         slot.connections.load(std::memory_order_relaxed));
    lag += fmt::format("atoll_loop_lag_seconds{{worker=\"{}\"}} {:.3f}\n", w,
                       double(slot.loop_lag_ms.load(std::memory_order_relaxed)) / 1000);
    accepted += slot.accepted.load(std::memory_order_relaxed);
    stalls += slot.loop_stalls.load(std::memory_order_relaxed);
  }
  if (any) {
    out += conns;
    out += lag;
    out += fmt::format(
        "# TYPE atoll_connections_accepted_total counter\natoll_connections_accepted_total {}\n",
        accepted);
    out += fmt::format(
        "# HELP atoll_loop_stalls_total Times a handler held a loop past the watchdog "
        "threshold.\n# TYPE atoll_loop_stalls_total counter\natoll_loop_stalls_total {}\n",
        stalls);
  }
  return out;
}

}  // namespace atl::host
