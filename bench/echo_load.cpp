// echo_load: a closed-loop load generator for an echo server.
//
// One thread, one epoll instance, N non-blocking TCP connections. Each
// connection sends a fixed-size message, waits until the whole message has
// come back (and checks it byte for byte), records the round-trip time and
// sends the next one. After a warm-up, it counts the round trips that finish
// inside a fixed measurement window and reports messages/s and latency
// percentiles. Given the server's PID it also reads the server's CPU time at
// the edges of the window (/proc/PID/stat utime+stime, and the nanosecond
// sum of /proc/PID/task/*/schedstat), so the CPU cost per message is exact
// to the window rather than to the process's life.
//
//   echo_load --port 7000 --connections 100 --size 64 --duration 10 --warmup 2 --server-pid 1234
//
// Pin it to a core of its own (taskset -c 1); see bench/echo_bench.py.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 100;
  int size = 64;
  double duration_s = 10;
  double warmup_s = 2;
  long server_pid = 0;
  bool json = false;
};

struct Conn {
  int fd = -1;
  std::int64_t sent_at_ns = 0;
  int sent = 0;      // bytes of the current message written
  int received = 0;  // bytes of the current message read back
  bool want_write = false;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "echo_load: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t process_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return std::int64_t(t.tv_sec) * 1'000'000'000 + std::int64_t(t.tv_usec) * 1000;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// The server's CPU time: utime+stime from /proc/PID/stat, in clock ticks.
long long server_ticks(long pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  p += 2;  // ") " then field 3 (state)
  long long utime = 0, stime = 0;
  // Fields 3..13 are skipped; 14 is utime, 15 stime.
  for (int field = 3; field <= 15 && *p; ++field) {
    if (field == 14) utime = std::strtoll(p, nullptr, 10);
    if (field == 15) stime = std::strtoll(p, nullptr, 10);
    const char* sp = std::strchr(p, ' ');
    if (!sp) break;
    p = sp + 1;
  }
  return utime + stime;
}

// The server's on-CPU time in nanoseconds: the sum over its threads of the
// first field of /proc/PID/task/TID/schedstat.
long long server_sched_ns(long pid) {
  char dir[64];
  std::snprintf(dir, sizeof dir, "/proc/%ld/task", pid);
  DIR* d = opendir(dir);
  if (!d) return -1;
  long long total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string(dir) + "/" + e->d_name + "/schedstat";
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      long long ns = 0;
      if (std::fscanf(f, "%lld", &ns) == 1) total += ns;
      std::fclose(f);
    }
  }
  closedir(d);
  return total;
}

// Busy time of the whole machine, all CPUs, in clock ticks (/proc/stat "cpu"
// line: everything but idle and iowait). Minus the server's and the client's
// own time it tells whether something else competed for the cores.
long long machine_busy_ticks() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  long long v[10] = {};
  int got = std::fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1],
                        &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
  std::fclose(f);
  if (got < 8) return -1;
  // user nice system idle iowait irq softirq steal (guest time is inside user).
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

void usage() {
  std::fprintf(stderr,
               "usage: echo_load --port N [--host 127.0.0.1] [--connections 100] [--size 64]\n"
               "                 [--duration 10] [--warmup 2] [--server-pid PID] [--json]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = std::atoi(value());
    else if (a == "--connections" || a == "-c")
      o.connections = std::atoi(value());
    else if (a == "--size")
      o.size = std::atoi(value());
    else if (a == "--duration")
      o.duration_s = std::atof(value());
    else if (a == "--warmup")
      o.warmup_s = std::atof(value());
    else if (a == "--server-pid")
      o.server_pid = std::atol(value());
    else if (a == "--json")
      o.json = true;
    else
      usage();
  }
  if (o.port <= 0 || o.connections <= 0 || o.size <= 0 || o.duration_s <= 0 || o.warmup_s < 0)
    usage();
  return o;
}

double percentile_us(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  auto k = std::size_t(q * double(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "echo_load: bad IPv4 address '%s'\n", opt.host.c_str());
    return 2;
  }

  // The message: a recognisable pattern, checked on the way back.
  std::vector<char> message(std::size_t(opt.size));
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = char('a' + i % 26);
  std::vector<char> in(std::size_t(opt.size));

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<Conn> conns(std::size_t(opt.connections));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }

  std::vector<std::uint32_t> samples;
  samples.reserve(std::size_t(400'000 * opt.duration_s) + 1024);
  std::uint64_t measured = 0, errors = 0, mismatches = 0;

  auto start_write = [&](Conn& c, std::size_t index) {
    c.sent = 0;
    c.received = 0;
    c.sent_at_ns = now_ns();
    ssize_t n = ::write(c.fd, message.data(), message.size());
    if (n < 0 && errno != EAGAIN) {
      ++errors;
      return false;
    }
    c.sent = n < 0 ? 0 : int(n);
    if (c.sent < opt.size && !c.want_write) {
      c.want_write = true;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u64 = index;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }
    return true;
  };

  const std::int64_t t0 = now_ns();
  const std::int64_t t_measure = t0 + std::int64_t(opt.warmup_s * 1e9);
  const std::int64_t t_end = t_measure + std::int64_t(opt.duration_s * 1e9);
  bool measuring = false;
  std::int64_t measure_started = 0, measure_stopped = 0;
  long long ticks0 = 0, ticks1 = 0, sched0 = 0, sched1 = 0, machine0 = 0, machine1 = 0;
  std::int64_t client_cpu0 = 0, client_cpu1 = 0;

  auto begin_window = [&](std::int64_t now) {
    measuring = true;
    measure_started = now;
    if (opt.server_pid) {
      ticks0 = server_ticks(opt.server_pid);
      sched0 = server_sched_ns(opt.server_pid);
    }
    client_cpu0 = process_cpu_ns();
    machine0 = machine_busy_ticks();
  };
  if (t_measure <= t0) begin_window(t0);

  for (std::size_t i = 0; i < conns.size(); ++i) start_write(conns[i], i);

  std::vector<epoll_event> events(conns.size());
  int live = int(conns.size());
  for (;;) {
    int n = epoll_wait(ep, events.data(), int(events.size()), 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; ++k) {
      std::size_t i = events[std::size_t(k)].data.u64;
      Conn& c = conns[i];
      if (c.fd < 0) continue;
      std::uint32_t what = events[std::size_t(k)].events;
      if ((what & EPOLLOUT) && c.sent < opt.size) {
        ssize_t w = ::write(c.fd, message.data() + c.sent, std::size_t(opt.size - c.sent));
        if (w > 0) c.sent += int(w);
        if (c.sent == opt.size && c.want_write) {
          c.want_write = false;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = i;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (!(what & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      ssize_t r = ::read(c.fd, in.data() + c.received, std::size_t(opt.size - c.received));
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {  // the server closed or failed: count it and drop the connection
        ++errors;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
        --live;
        continue;
      }
      if (std::memcmp(in.data() + c.received, message.data() + c.received, std::size_t(r)) != 0)
        ++mismatches;
      c.received += int(r);
      if (c.received < opt.size) continue;
      std::int64_t now = now_ns();
      if (measuring && now < t_end) {
        ++measured;
        std::int64_t rtt = now - c.sent_at_ns;
        samples.push_back(std::uint32_t(std::min<std::int64_t>(rtt, 0xffffffff)));
      }
      if (now < t_end) start_write(c, i);
    }
    std::int64_t now = now_ns();
    if (!measuring && now >= t_measure) begin_window(now);
    if (now >= t_end || live == 0) {
      measure_stopped = now;
      if (opt.server_pid) {
        ticks1 = server_ticks(opt.server_pid);
        sched1 = server_sched_ns(opt.server_pid);
      }
      client_cpu1 = process_cpu_ns();
      machine1 = machine_busy_ticks();
      break;
    }
  }
  for (auto& c : conns)
    if (c.fd >= 0) ::close(c.fd);

  double window_s = double(measure_stopped - measure_started) / 1e9;
  double rate = window_s > 0 ? double(measured) / window_s : 0;
  double p50 = percentile_us(samples, 0.50);
  double p90 = percentile_us(samples, 0.90);
  double p99 = percentile_us(samples, 0.99);
  double p999 = percentile_us(samples, 0.999);
  double maxv = samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()) / 1000.0;
  double hz = double(sysconf(_SC_CLK_TCK));
  double server_cpu_s = opt.server_pid ? double(ticks1 - ticks0) / hz : 0;
  double server_sched_s = opt.server_pid ? double(sched1 - sched0) / 1e9 : 0;
  double client_cpu_s = double(client_cpu1 - client_cpu0) / 1e9;
  auto per_msg_us = [&](double cpu_s) { return measured ? cpu_s * 1e6 / double(measured) : 0; };
  // Share of one core used during the window: near 1.0 means that side was the bottleneck.
  auto busy = [&](double cpu_s) { return window_s > 0 ? cpu_s / window_s : 0; };
  // CPU used by everything else on the machine during the window, in cores:
  // well above 0.05 means the figures were disturbed by other work.
  double machine_s = double(machine1 - machine0) / hz;
  double other_busy =
      opt.server_pid ? std::max(0.0, busy(machine_s - server_sched_s - client_cpu_s)) : 0;

  if (opt.json) {
    std::printf(
        "{\"connections\": %d, \"size\": %d, \"window_s\": %.3f, \"messages\": %llu, "
        "\"msgs_per_s\": %.0f, "
        "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": "
        "%.1f, "
        "\"server_cpu_s\": %.3f, \"server_cpu_us_per_msg\": %.3f, "
        "\"server_sched_s\": %.4f, \"server_sched_us_per_msg\": %.3f, "
        "\"server_busy\": %.3f, \"client_cpu_s\": %.3f, \"client_cpu_us_per_msg\": %.3f, "
        "\"client_busy\": %.3f, "
        "\"other_busy\": %.3f, \"errors\": %llu, \"mismatches\": %llu}\n",
        opt.connections, opt.size, window_s, static_cast<unsigned long long>(measured), rate, p50,
        p90, p99, p999, maxv, server_cpu_s, per_msg_us(server_cpu_s), server_sched_s,
        per_msg_us(server_sched_s), busy(server_sched_s), client_cpu_s, per_msg_us(client_cpu_s),
        busy(client_cpu_s), other_busy, static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(mismatches));
  } else {
    std::printf("connections %d, %d-byte messages, window %.3f s\n", opt.connections, opt.size,
                window_s);
    std::printf("messages    %llu (%.0f/s)\n", static_cast<unsigned long long>(measured), rate);
    std::printf("latency     p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
                p50, p90, p99, p999, maxv);
    if (opt.server_pid)
      std::printf(
          "server CPU  %.3f s (stat), %.4f s (schedstat): %.3f / %.3f us per message, %.0f%% "
          "busy\n",
          server_cpu_s, server_sched_s, per_msg_us(server_cpu_s), per_msg_us(server_sched_s),
          100 * busy(server_sched_s));
    std::printf("client CPU  %.3f s: %.3f us per message, %.0f%% busy\n", client_cpu_s,
                per_msg_us(client_cpu_s), 100 * busy(client_cpu_s));
    if (opt.server_pid)
      std::printf("other work  %.0f%% of a core (the rest of the machine)\n", 100 * other_busy);
    std::printf("errors      %llu, mismatched bytes %llu\n",
                static_cast<unsigned long long>(errors),
                static_cast<unsigned long long>(mismatches));
  }
  return errors || mismatches ? 1 : 0;
}
