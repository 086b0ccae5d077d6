#pragma once
// ContentStore: files named by the SHA-256 of their bytes.
//
// A blob is written once, under blobs/ab/cdef… (the hex digest split after
// two characters so no directory grows past a few thousand entries), through
// a temporary file, fsync and rename: a crash leaves either the whole blob or
// none of it, never a torn one. A blob's name is its ETag.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atl::host {

/// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
/// True if `s` is 64 lowercase hex digits.
bool is_sha256_hex(std::string_view s) noexcept;

class ContentStore {
 public:
  /// Uses (and creates) DIR/blobs. Throws std::runtime_error naming DIR.
  explicit ContentStore(std::string dir);

  /// Stores `bytes`; returns their hash. Idempotent.
  std::string put(std::string_view bytes);
  /// Stores `bytes` only if they hash to `expected_hash`; returns false (and
  /// stores nothing) if they do not.
  bool put_verified(std::string_view expected_hash, std::string_view bytes);
  /// Stores many blobs, (hash, bytes) already verified by the caller, with
  /// one sync for all; returns how many were new. On an error nothing new is
  /// left half-written (some may be stored whole).
  std::size_t put_many(const std::vector<std::pair<std::string, std::string_view>>& blobs);
  bool has(std::string_view hash) const;
  /// The file holding a blob (whether or not it exists).
  std::string path(std::string_view hash) const;
  std::optional<std::uint64_t> size(std::string_view hash) const;
  /// Every stored hash (for garbage collection).
  std::vector<std::string> list() const;
  bool remove(std::string_view hash);
  /// Removes files in DIR/tmp (an interrupted upload's) not modified for
  /// `min_age_s`; returns (files, disk bytes) removed.
  std::pair<std::size_t, std::uint64_t> remove_stale_tmp(std::int64_t min_age_s);
  const std::string& dir() const noexcept { return dir_; }

 private:
  void write_blob(std::string_view hash, std::string_view bytes);
  std::string write_tmp(std::string_view hash, std::string_view bytes, bool sync);
  void install(const std::string& tmp, std::string_view hash);
  std::string dir_;
};

}  // namespace atl::host
