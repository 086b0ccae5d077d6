#include <atoll/http/headers.hpp>

#include <array>
#include <cstring>
#include <stdexcept>

namespace atl::http {

namespace {
inline unsigned char lower(unsigned char c) noexcept { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

// One table for both checks a response header gets: bit 1, the byte is an
// RFC 9110 §5.6.2 tchar (allowed in a name); bit 2, it may not appear in a
// value (CR, LF, NUL: response splitting). A lookup per byte, no branches
// per character class: headers are checked on every response.
constexpr std::array<unsigned char, 256> header_bytes = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[std::size_t(c)] = 1;
  for (int c = 'A'; c <= 'Z'; ++c) t[std::size_t(c)] = 1;
  for (int c = '0'; c <= '9'; ++c) t[std::size_t(c)] = 1;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = 1;
  t['\r'] = t['\n'] = t[0] = 2;
  return t;
}();

bool valid_name(std::string_view name) noexcept {
  unsigned char all = 1;
  for (unsigned char c : name) all &= header_bytes[c];
  return all && !name.empty();
}

bool valid_value(std::string_view value) noexcept {
  unsigned char any = 0;
  for (unsigned char c : value) any |= header_bytes[c];
  return !(any & 2);
}

// Finds the line for `name` at or after `from`; returns npos if none.
std::size_t find_line(const std::string& wire, std::string_view name, std::size_t from = 0) {
  std::size_t pos = from;
  while (pos < wire.size()) {
    std::size_t colon = wire.find(':', pos);
    std::size_t eol = wire.find("\r\n", pos);
    if (colon != std::string::npos && colon < eol &&
        iequals(std::string_view(wire).substr(pos, colon - pos), name))
      return pos;
    pos = eol + 2;
  }
  return std::string::npos;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view RequestHeaders::get(std::string_view name) const noexcept {
  for (const auto& h : list_)
    if (iequals(h.name, name)) return h.value;
  return {};
}

bool RequestHeaders::has(std::string_view name) const noexcept {
  for (const auto& h : list_)
    if (iequals(h.name, name)) return true;
  return false;
}

std::size_t RequestHeaders::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const auto& h : list_) n += iequals(h.name, name);
  return n;
}

void validate_header(std::string_view name, std::string_view value) {
  if (valid_name(name) && valid_value(value)) [[likely]]
    return;
  if (name.empty()) throw std::invalid_argument("response header with an empty name");
  if (!valid_name(name))
    throw std::invalid_argument("response header name '" + std::string(name) +
                                "' is not a token (RFC 9110 §5.1)");
  throw std::invalid_argument("response header '" + std::string(name) +
                              "' has a CR, LF or NUL in its value (refused: response splitting)");
}

namespace {
// "name: value\r\n" appended with one size change: headers are added on
// every response, so this avoids four appends' capacity checks.
void append_line(std::string& wire, std::string_view name, std::string_view value) {
  // A value read from these same headers (add("X", get("Y"))) would be freed
  // by the resize below: copy it first.
  auto inside = [&](std::string_view v) {
    return !v.empty() && v.data() >= wire.data() && v.data() < wire.data() + wire.size();
  };
  if (inside(name) || inside(value)) {
    std::string n(name), v(value);
    append_line(wire, n, v);
    return;
  }
  std::size_t at = wire.size();
  wire.resize(at + name.size() + value.size() + 4);
  char* p = wire.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '\r';
  *p = '\n';
}
}  // namespace

void ResponseHeaders::add(std::string_view name, std::string_view value) {
  validate_header(name, value);
  append_line(wire_, name, value);
}

void ResponseHeaders::add(const HeaderBlock& block) { wire_.append(block.wire()); }

void ResponseHeaders::set(std::string_view name, std::string_view value) {
  validate_header(name, value);
  if (!wire_.empty()) remove(name);
  append_line(wire_, name, value);
}

void HeaderBlock::add(std::string_view name, std::string_view value) {
  validate_header(name, value);
  append_line(wire_, name, value);
}

void ResponseHeaders::remove(std::string_view name) {
  std::size_t pos = 0;
  while ((pos = find_line(wire_, name, pos)) != std::string::npos) {
    std::size_t eol = wire_.find("\r\n", pos);
    wire_.erase(pos, eol + 2 - pos);
  }
}

std::string_view ResponseHeaders::get(std::string_view name) const noexcept {
  std::size_t pos = find_line(wire_, name);
  if (pos == std::string::npos) return {};
  std::size_t colon = wire_.find(':', pos);
  std::size_t eol = wire_.find("\r\n", pos);
  std::string_view v = std::string_view(wire_).substr(colon + 1, eol - colon - 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

bool ResponseHeaders::has(std::string_view name) const noexcept {
  return find_line(wire_, name) != std::string::npos;
}

void ResponseHeaders::append_token(std::string_view name, std::string_view token) {
  std::string_view current = get(name);
  if (current.empty()) {
    add(name, token);
    return;
  }
  std::size_t start = 0;
  while (start <= current.size()) {
    std::size_t comma = current.find(',', start);
    std::string_view item = current.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (iequals(item, token) || item == "*") return;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::string joined = std::string(current) + ", " + std::string(token);
  set(name, joined);
}

Header ResponseHeaders::Iterator::operator*() const noexcept {
  std::size_t colon = wire_.find(':', pos_), eol = wire_.find("\r\n", pos_);
  std::string_view v = wire_.substr(colon + 1, eol - colon - 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return {wire_.substr(pos_, colon - pos_), v};
}

ResponseHeaders::Iterator& ResponseHeaders::Iterator::operator++() noexcept {
  std::size_t eol = wire_.find("\r\n", pos_);
  pos_ = eol == std::string_view::npos ? wire_.size() : eol + 2;
  return *this;
}

std::vector<Header> ResponseHeaders::list() const { return {begin(), end()}; }

}  // namespace atl::http
