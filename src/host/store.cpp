#include <atoll/host/store.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>

namespace atl::host {

namespace {
void make_dir(const std::string& d) {
  if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::system_error(errno, std::generic_category(),
                            "content store: cannot create '" + d + "'");
}
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  return out;
}

bool is_sha256_hex(std::string_view s) noexcept {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

ContentStore::ContentStore(std::string dir) : dir_(std::move(dir)) {
  make_dir(dir_);
  make_dir(dir_ + "/blobs");
  make_dir(dir_ + "/tmp");
}

std::string ContentStore::path(std::string_view hash) const {
  return dir_ + "/blobs/" + std::string(hash.substr(0, 2)) + "/" + std::string(hash.substr(2));
}

bool ContentStore::has(std::string_view hash) const {
  if (!is_sha256_hex(hash)) return false;
  struct stat st;
  return ::stat(path(hash).c_str(), &st) == 0;
}

std::optional<std::uint64_t> ContentStore::size(std::string_view hash) const {
  struct stat st;
  if (!is_sha256_hex(hash) || ::stat(path(hash).c_str(), &st) != 0) return std::nullopt;
  return std::uint64_t(st.st_size);
}

// Writes `bytes` to a temporary file (synced if `sync`); returns its path.
std::string ContentStore::write_tmp(std::string_view hash, std::string_view bytes, bool sync) {
  std::string tmp = dir_ + "/tmp/" + std::string(hash) + "." + std::to_string(::getpid()) + "." +
                    std::to_string(reinterpret_cast<std::uintptr_t>(&bytes));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(),
                            "content store: cannot create '" + tmp + "'");
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n == 0 ? EIO : errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::system_error(e, std::generic_category(), "content store: cannot write a blob");
    }
    off += std::size_t(n);
  }
  // Close in any case (a full disk often shows first at fsync).
  int e = sync && ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && !e) e = errno;
  if (e) {
    ::unlink(tmp.c_str());
    throw std::system_error(e, std::generic_category(), "content store: cannot sync a blob");
  }
  return tmp;
}

void ContentStore::install(const std::string& tmp, std::string_view hash) {
  make_dir(dir_ + "/blobs/" + std::string(hash.substr(0, 2)));
  if (::rename(tmp.c_str(), path(hash).c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(e, std::generic_category(), "content store: cannot rename a blob");
  }
}

void ContentStore::write_blob(std::string_view hash, std::string_view bytes) {
  struct stat st;
  if (::stat(path(hash).c_str(), &st) == 0) return;  // already stored
  install(write_tmp(hash, bytes, true), hash);
}

std::size_t ContentStore::put_many(
    const std::vector<std::pair<std::string, std::string_view>>& blobs) {
  // Written unsynced, synced together (one syncfs, not an fsync per blob:
  // thousands of small files otherwise take seconds), then renamed into
  // place: a crash leaves whole blobs or none, as write_blob does.
  std::vector<std::pair<std::string, std::string_view>> written;  // (tmp, hash)
  auto discard = [&] {
    for (const auto& [tmp, _] : written) ::unlink(tmp.c_str());
  };
  try {
    for (const auto& blob : blobs) {
      // (Not a structured binding: clang 14 cannot capture one in a lambda.)
      const std::string& hash = blob.first;
      std::string_view bytes = blob.second;
      if (!is_sha256_hex(hash))
        throw std::invalid_argument("'" + hash + "' is not a SHA-256 digest");
      struct stat st;
      if (::stat(path(hash).c_str(), &st) == 0) continue;
      if (std::any_of(written.begin(), written.end(),
                      [&](const auto& w) { return w.second == hash; }))
        continue;
      written.emplace_back(write_tmp(hash, bytes, false), hash);
    }
    if (!written.empty()) {
      int fd = ::open((dir_ + "/tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int e = fd < 0 ? errno : (::syncfs(fd) != 0 ? errno : 0);
      if (fd >= 0) ::close(fd);
      if (e)
        throw std::system_error(e, std::generic_category(), "content store: cannot sync blobs");
    }
  } catch (...) {
    discard();
    throw;
  }
  for (std::size_t i = 0; i < written.size(); ++i) {
    try {
      install(written[i].first, written[i].second);
    } catch (...) {
      for (std::size_t j = i + 1; j < written.size(); ++j) ::unlink(written[j].first.c_str());
      throw;
    }
  }
  return written.size();
}

std::string ContentStore::put(std::string_view bytes) {
  std::string hash = sha256_hex(bytes);
  write_blob(hash, bytes);
  return hash;
}

bool ContentStore::put_verified(std::string_view expected, std::string_view bytes) {
  if (!is_sha256_hex(expected) || sha256_hex(bytes) != expected) return false;
  write_blob(expected, bytes);
  return true;
}

std::vector<std::string> ContentStore::list() const {
  std::vector<std::string> out;
  std::string blobs = dir_ + "/blobs";
  DIR* top = ::opendir(blobs.c_str());
  if (!top) return out;
  while (dirent* d = ::readdir(top)) {
    if (std::strlen(d->d_name) != 2) continue;
    std::string sub = blobs + "/" + d->d_name;
    DIR* inner = ::opendir(sub.c_str());
    if (!inner) continue;
    while (dirent* f = ::readdir(inner)) {
      std::string h = std::string(d->d_name) + f->d_name;
      if (is_sha256_hex(h)) out.push_back(h);
    }
    ::closedir(inner);
  }
  ::closedir(top);
  return out;
}

bool ContentStore::remove(std::string_view hash) {
  return is_sha256_hex(hash) && ::unlink(path(hash).c_str()) == 0;
}

std::pair<std::size_t, std::uint64_t> ContentStore::remove_stale_tmp(std::int64_t min_age_s) {
  std::pair<std::size_t, std::uint64_t> removed{0, 0};
  std::string tmp = dir_ + "/tmp";
  DIR* d = ::opendir(tmp.c_str());
  if (!d) return removed;
  std::int64_t now = std::int64_t(std::time(nullptr));
  while (dirent* f = ::readdir(d)) {
    if (f->d_name[0] == '.') continue;
    std::string file = tmp + "/" + f->d_name;
    struct stat st;
    if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < min_age_s)
      continue;
    if (::unlink(file.c_str()) == 0) {
      ++removed.first;
      removed.second += std::uint64_t(st.st_blocks) * 512;
    }
  }
  ::closedir(d);
  return removed;
}

}  // namespace atl::host
