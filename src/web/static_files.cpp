#include <atoll/web/static_files.hpp>

#include <atoll/http/date.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/string_map.hpp>
#include <atoll/web/mime.hpp>
#include <atoll/web/request_checks.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace atl::web {

namespace {

using http::iequals;

enum class Encoding { identity, br, zstd, gzip };
constexpr std::string_view encoding_names[] = {"identity", "br", "zstd", "gzip"};
constexpr std::string_view encoding_suffixes[] = {"", ".br", ".zst", ".gz"};

struct Variant {
  int fd = -1;
  std::uint64_t size = 0;
  std::string data;  // the whole file, when small enough to keep
  bool in_memory = false;
  std::string etag;
  // Content-Type, ETag, Last-Modified, Cache-Control and Content-Encoding or
  // Accept-Ranges: what every answer from this variant carries, made once.
  http::HeaderBlock headers;
  explicit operator bool() const noexcept { return fd >= 0 || in_memory; }
};

struct Entry {
  enum class Kind { file, directory, missing } kind = Kind::missing;
  Variant variants[4];  // indexed by Encoding
  std::string_view mime;
  std::string last_modified;
  long mtime = 0;
  ino_t ino = 0;
  dev_t dev = 0;
  std::int64_t mtime_ns = 0;
  std::string file;  // the file system path this entry was built from
  std::int64_t checked_ms = 0;
  bool has_siblings = false;
  ~Entry() {
    for (auto& v : variants)
      if (v.fd >= 0) ::close(v.fd);
  }
};

struct Cache {
  // Shared: a request holds its entry while it sends, so an eviction on the
  // same loop never closes a descriptor that a suspended sendfile still uses.
  runtime::StringMap<std::shared_ptr<Entry>> entries;
  std::size_t inline_bytes = 0;
};

class StaticFiles {
 public:
  explicit StaticFiles(StaticOptions o) : opt_(std::move(o)) {
    char buf[PATH_MAX];
    if (opt_.root.empty() || !::realpath(opt_.root.c_str(), buf))
      throw std::invalid_argument("static files: root '" + opt_.root + "' does not exist");
    struct stat st;
    if (::stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      throw std::invalid_argument("static files: root '" + opt_.root + "' is not a directory");
    root_ = buf;
    if (!opt_.cache_control.empty()) http::validate_header("Cache-Control", opt_.cache_control);
  }

  // Serves the request, or passes it to `next` (when given) if it is not for
  // an existing file.
  Task<> serve(Conn& c, const App* next);

 private:
  Cache& cache() {
    thread_local std::unordered_map<const StaticFiles*, Cache> caches;
    return caches[this];
  }
  std::shared_ptr<Entry> lookup(std::string_view path);
  std::shared_ptr<Entry> build(std::string_view path, Cache& cache);
  bool inside_root(const std::string& file) const;
  bool open_variant(Variant& v, const std::string& file, Cache& cache, const Entry& base);

  StaticOptions opt_;
  std::string root_;
};

bool StaticFiles::inside_root(const std::string& file) const {
  char buf[PATH_MAX];
  if (!::realpath(file.c_str(), buf)) return false;
  std::string_view real(buf);
  return real == root_ || (real.starts_with(root_) && real[root_.size()] == '/');
}

bool StaticFiles::open_variant(Variant& v, const std::string& file, Cache& cache,
                               const Entry& base) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !inside_root(file)) {
    ::close(fd);
    return false;
  }
  v.size = std::uint64_t(st.st_size);
  if (v.size <= opt_.inline_max && cache.inline_bytes + v.size <= opt_.inline_total) {
    v.data.resize(v.size);
    std::size_t got = 0;
    while (got < v.size) {
      ssize_t n = ::pread(fd, v.data.data() + got, v.size - got, off_t(got));
      if (n <= 0) break;
      got += std::size_t(n);
    }
    if (got == v.size) {
      v.in_memory = true;
      cache.inline_bytes += v.size;
      ::close(fd);
      fd = -1;
    } else {
      v.data.clear();
    }
  }
  v.fd = fd;
  char etag[64];
  int n = std::snprintf(etag, sizeof etag, "\"%llx-%llx\"",
                        static_cast<unsigned long long>(base.mtime_ns),
                        static_cast<unsigned long long>(v.size));
  v.etag.assign(etag, std::size_t(n));
  return true;
}

std::shared_ptr<Entry> StaticFiles::build(std::string_view path, Cache& cache) {
  auto e = std::make_shared<Entry>();
  std::string file = root_ + std::string(path);
  struct stat st;
  if (::stat(file.c_str(), &st) != 0 || !inside_root(file)) return e;  // missing
  if (S_ISDIR(st.st_mode)) {
    if (path.back() != '/') {
      e->kind = Entry::Kind::directory;
      return e;
    }
    bool found = false;
    for (const auto& index : opt_.index_files) {
      std::string candidate = file + index;
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        file = std::move(candidate);
        found = true;
        break;
      }
    }
    if (!found) return e;
  } else if (!S_ISREG(st.st_mode)) {
    return e;
  }
  e->file = file;
  e->ino = st.st_ino;
  e->dev = st.st_dev;
  e->mtime = st.st_mtim.tv_sec;
  e->mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  char date[29];
  http::format_http_date(e->mtime, date);
  e->last_modified.assign(date, sizeof date);
  e->mime = mime_type(file);
  if (!open_variant(e->variants[0], file, cache, *e)) return std::make_shared<Entry>();
  if (opt_.precompressed) {
    for (int i = 1; i < 4; ++i) {
      if (open_variant(e->variants[i], file + std::string(encoding_suffixes[i]), cache, *e)) {
        e->variants[i].etag.insert(e->variants[i].etag.size() - 1,
                                   "-" + std::string(encoding_names[i]));
        e->has_siblings = true;
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    Variant& v = e->variants[i];
    if (!v) continue;
    v.headers.add("Content-Type", e->mime);
    v.headers.add("ETag", v.etag);
    v.headers.add("Last-Modified", e->last_modified);
    if (!opt_.cache_control.empty()) v.headers.add("Cache-Control", opt_.cache_control);
    if (i != int(Encoding::identity))
      v.headers.add("Content-Encoding", encoding_names[i]);
    else
      v.headers.add("Accept-Ranges", "bytes");
  }
  e->kind = Entry::Kind::file;
  return e;
}

std::shared_ptr<Entry> StaticFiles::lookup(std::string_view path) {
  Cache& cache = this->cache();
  auto* loop = runtime::Loop::current();
  std::int64_t now = loop ? loop->now_ms() : 0;
  auto it = cache.entries.find(path);  // no string built on a hit
  if (it != cache.entries.end()) {
    Entry& e = *it->second;
    if (now - e.checked_ms < opt_.revalidate_ms) return it->second;
    // Revalidate: the same inode, size and mtime mean the same file.
    struct stat st;
    bool same = e.kind == Entry::Kind::file && ::stat(e.file.c_str(), &st) == 0 &&
                st.st_ino == e.ino && st.st_dev == e.dev &&
                std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec == e.mtime_ns &&
                std::uint64_t(st.st_size) == e.variants[0].size;
    if (same) {
      e.checked_ms = now;
      return it->second;
    }
    for (auto& v : e.variants)
      if (v.in_memory) cache.inline_bytes -= v.size;
    cache.entries.erase(it);
  }
  if (cache.entries.size() >= opt_.cache_entries) {
    // Full: start over. Simple, bounded, and rare for a site's working set.
    cache.entries.clear();
    cache.inline_bytes = 0;
  }
  auto e = build(path, cache);
  e->checked_ms = now;
  cache.entries.emplace(std::string(path), e);
  return e;
}

Task<> StaticFiles::serve(Conn& c, const App* next) {
  bool get = c.method() == "GET", head = c.method() == "HEAD";
  std::string_view path = std::string_view(c.path()).substr(c.path_offset);
  if (path.empty()) path = "/";
  if (!get && !head) {
    if (next) {
      co_await (*next)(c);
      co_return;
    }
    c.set_header("Allow", "GET, HEAD");
    co_await c.send(405, "Method Not Allowed\n");
    co_return;
  }
  if (!is_safe_path(path)) {
    c.set_header("Content-Type", "text/plain; charset=utf-8");
    co_await c.send(400, "Bad Request: the path holds '..', '.', a backslash or a NUL\n");
    co_return;
  }
  std::shared_ptr<Entry> e = lookup(path);
  if (e->kind == Entry::Kind::directory) {
    std::string location = std::string(c.raw_path()) + "/";
    if (!c.query_string().empty()) location += "?" + std::string(c.query_string());
    c.set_header("Location", location);
    co_await c.send(301, "");
    co_return;
  }
  if (e->kind != Entry::Kind::file) {
    if (next) {
      co_await (*next)(c);
      co_return;
    }
    c.set_header("Content-Type", "text/plain; charset=utf-8");
    co_await c.send(404, "Not Found\n");
    co_return;
  }

  auto& h = c.response_headers();
  std::string_view range = c.header("range");
  // Choose the representation: a precompressed sibling when accepted (and no
  // range is asked for: ranges are served from the identity file).
  Encoding enc = Encoding::identity;
  if (e->has_siblings) {
    h.append_token("Vary", "Accept-Encoding");
    std::string_view ae = c.header("accept-encoding");
    if (!ae.empty() && range.empty()) {
      double best = 0;
      for (Encoding cand : {Encoding::br, Encoding::zstd, Encoding::gzip}) {
        if (!e->variants[int(cand)]) continue;
        double q = accepted_quality(ae, encoding_names[int(cand)]);
        if (q > best) {
          best = q;
          enc = cand;
        }
      }
    }
  }
  Variant& v = e->variants[int(enc)];
  h.add(v.headers);

  // Conditional requests (RFC 9110 §13.2.2): If-None-Match wins over
  // If-Modified-Since.
  std::string_view inm = c.header("if-none-match");
  bool not_modified = false;
  if (!inm.empty()) {
    std::string_view strong = std::string_view(v.etag);
    std::size_t pos = 0;
    while (pos < inm.size()) {
      std::size_t comma = inm.find(',', pos);
      std::string_view tag =
          inm.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      pos = comma == std::string_view::npos ? inm.size() : comma + 1;
      while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
      while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
      if (tag.starts_with("W/")) tag.remove_prefix(2);  // weak comparison
      if (tag == "*" || tag == strong) not_modified = true;
    }
  } else if (auto ims = c.header("if-modified-since"); !ims.empty()) {
    if (auto t = http::parse_http_date(ims); t && e->mtime <= *t) not_modified = true;
  }
  if (not_modified) {
    co_await c.send(304, "");
    co_return;
  }

  if (!range.empty() && enc == Encoding::identity) {
    bool honour = true;
    if (auto if_range = c.header("if-range"); !if_range.empty())
      honour = if_range == v.etag || if_range == e->last_modified;
    std::vector<ByteRange> ranges;
    if (honour && parse_ranges(range, v.size, opt_.max_ranges, ranges)) {
      if (ranges.empty()) {
        h.set("Content-Range", "bytes */" + std::to_string(v.size));
        h.remove("ETag");
        co_await c.send(416, "");
        co_return;
      }
      if (ranges.size() == 1) {
        auto [a, b] = ranges[0];
        h.add("Content-Range", "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" +
                                   std::to_string(v.size));
        if (v.in_memory)
          co_await c.send(206, std::string_view(v.data).substr(a, b - a + 1));
        else
          co_await c.send_file(206, v.fd, off_t(a), b - a + 1);
        co_return;
      }
      // Several ranges: multipart/byteranges, built in memory (bounded by
      // max_ranges × the file; large files go by a single range in practice).
      std::uint64_t total = 0;
      for (auto& r : ranges) total += r.last - r.first + 1;
      if (total <= 8 * 1024 * 1024) {
        static constexpr std::string_view boundary = "atoll-byteranges-5c1e";
        std::string body;
        body.reserve(total + ranges.size() * 128);
        for (auto& r : ranges) {
          body += "--";
          body += boundary;
          body += "\r\nContent-Type: ";
          body += e->mime;
          body += "\r\nContent-Range: bytes " + std::to_string(r.first) + "-" +
                  std::to_string(r.last) + "/" + std::to_string(v.size) + "\r\n\r\n";
          std::size_t len = std::size_t(r.last - r.first + 1);
          if (v.in_memory) {
            body.append(v.data, std::size_t(r.first), len);
          } else {
            std::size_t at = body.size();
            body.resize(at + len);
            ssize_t n = ::pread(v.fd, body.data() + at, len, off_t(r.first));
            if (n != ssize_t(len))
              throw std::runtime_error("static files: short read of " + e->file);
          }
          body += "\r\n";
        }
        body += "--";
        body += boundary;
        body += "--\r\n";
        h.remove("Content-Type");
        h.add("Content-Type", "multipart/byteranges; boundary=" + std::string(boundary));
        co_await c.send(206, body);
        co_return;
      }
    }
  }
  if (v.in_memory)
    co_await c.send(200, v.data);
  else
    co_await c.send_file(200, v.fd, 0, v.size);
}

}  // namespace

App static_files(StaticOptions options) {
  auto files = std::make_shared<StaticFiles>(std::move(options));
  // Plain lambdas returning serve()'s task: no coroutine frame of their own.
  return [files](Conn& c) { return files->serve(c, nullptr); };
}

Middleware static_middleware(StaticOptions options) {
  auto files = std::make_shared<StaticFiles>(std::move(options));
  return [files](Conn& c, const App& next) { return files->serve(c, &next); };
}

}  // namespace atl::web
