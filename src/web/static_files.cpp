#include <atoll/http/exchange.hpp>
#include <atoll/web/static_files.hpp>

#include <atoll/http/date.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/string_map.hpp>
#include <atoll/web/file_response.hpp>
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

// variants[0] is the file itself, variants[1 + int(ContentCoding)] its
// precompressed siblings (file.br, file.zst, file.gz).
constexpr std::string_view encoding_suffixes[] = {"", ".br", ".zst", ".gz"};

using Variant = CachedVariant;

struct Entry {
  enum class Kind { file, directory, missing } kind = Kind::missing;
  CachedFile cached;  // the variants (identity, then by ContentCoding), ready to send
  ino_t ino = 0;
  dev_t dev = 0;
  std::int64_t mtime_ns = 0;
  std::string file;  // the file system path this entry was built from
  std::int64_t checked_ms = 0;
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
  e->cached.mtime = st.st_mtim.tv_sec;
  e->mtime_ns = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  char date[29];
  http::format_http_date(e->cached.mtime, date);
  e->cached.last_modified.assign(date, sizeof date);
  e->cached.mime = mime_type(file);
  Variant* variants = e->cached.variants;
  if (!open_variant(variants[0], file, cache, *e)) return std::make_shared<Entry>();
  if (opt_.precompressed) {
    for (int i = 1; i < 4; ++i) {
      if (open_variant(variants[i], file + std::string(encoding_suffixes[i]), cache, *e)) {
        variants[i].etag.insert(variants[i].etag.size() - 1,
                                "-" + std::string(coding_name(ContentCoding(i - 1))));
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    Variant& v = variants[i];
    if (!v) continue;
    v.headers.add("Content-Type", e->cached.mime);
    v.headers.add("ETag", v.etag);
    v.headers.add("Last-Modified", e->cached.last_modified);
    if (!opt_.cache_control.empty()) v.headers.add("Cache-Control", opt_.cache_control);
    if (i > 0)
      v.headers.add("Content-Encoding", coding_name(ContentCoding(i - 1)));
    else
      v.headers.add("Accept-Ranges", "bytes");
  }
  e->cached.ready(opt_.max_ranges);
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
                std::uint64_t(st.st_size) == e.cached.variants[0].size;
    if (same) {
      e.checked_ms = now;
      return it->second;
    }
    for (auto& v : e.cached.variants)
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
    co_await http::send_error(c, 405);
    co_return;
  }
  if (!is_safe_path(path)) {
    co_await http::send_error(
        c, 400, http::error_line(400, "the path holds '..', '.', a backslash or a NUL"));
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
    co_await http::send_error(c, 404);
    co_return;
  }

  co_await send_file_response(c, e->cached.response);  // (this frame holds the entry)
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
