#pragma once
// Header collections: request headers as zero-copy views, response headers
// as a reusable serialised block.
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace atl::http {

/// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

struct Header {
  std::string_view name;
  std::string_view value;
};

/// Request headers: views into the connection's read buffer, valid until the
/// response is finished. Lookups are case-insensitive.
class RequestHeaders {
 public:
  /// The first value of `name`, or an empty view.
  std::string_view get(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept;
  std::size_t count(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return list_.size(); }
  auto begin() const noexcept { return list_.begin(); }
  auto end() const noexcept { return list_.end(); }
  void add(std::string_view name, std::string_view value) { list_.push_back({name, value}); }
  void clear() noexcept { list_.clear(); }

 private:
  std::vector<Header> list_;
};

/// Response headers, kept as the bytes that go on the wire ("Name: value\r\n"…)
/// in a buffer reused from one response to the next: no allocation per header
/// once warm. A name must be an RFC 9110 token and a value must not hold CR,
/// LF or NUL: such a header is refused with std::invalid_argument, never sent.
class HeaderBlock;

class ResponseHeaders {
 public:
  /// Replaces every `name` header with this one.
  void set(std::string_view name, std::string_view value);
  /// Appends another `name` header (Set-Cookie, Link, …).
  void add(std::string_view name, std::string_view value);
  /// Appends every header of a prepared block (checked when it was built).
  void add(const HeaderBlock& block);
  /// The first value of `name`, or an empty view.
  std::string_view get(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept;
  void remove(std::string_view name);
  /// Adds `token` to a comma-separated header (Vary) unless present.
  void append_token(std::string_view name, std::string_view token);
  const std::string& wire() const noexcept { return wire_; }
  void clear() noexcept { wire_.clear(); }
  bool empty() const noexcept { return wire_.empty(); }

  /// Every header as (name, value) views into the block, in order, without
  /// allocating: `for (http::Header h : response_headers())`. The storage is
  /// a protocol's business: HTTP/1.1 writes these bytes as they are, HTTP/2
  /// will HPACK the pairs.
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Header;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Header;
    Iterator() = default;
    Iterator(std::string_view wire, std::size_t pos) noexcept : wire_(wire), pos_(pos) {}
    Header operator*() const noexcept;
    Iterator& operator++() noexcept;
    Iterator operator++(int) noexcept {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& o) const noexcept { return pos_ == o.pos_; }

   private:
    std::string_view wire_;
    std::size_t pos_ = 0;
  };
  Iterator begin() const noexcept { return {wire_, 0}; }
  Iterator end() const noexcept { return {wire_, wire_.size()}; }
  /// The same pairs, copied into a vector.
  std::vector<Header> list() const;

 private:
  std::string wire_;
};

/// Headers prepared once and added to many responses as one copy: the
/// headers a static file or a cached site path always carries (type, ETag,
/// Last-Modified, …). Each header is checked as ResponseHeaders checks it
/// when it is added to the block, not again per response.
class HeaderBlock {
 public:
  void add(std::string_view name, std::string_view value);
  std::string_view wire() const noexcept { return wire_; }
  bool empty() const noexcept { return wire_.empty(); }

 private:
  std::string wire_;
};

/// Throws std::invalid_argument if `name` is not a token or `value` holds a
/// CR, LF or NUL (response splitting).
void validate_header(std::string_view name, std::string_view value);

}  // namespace atl::http
