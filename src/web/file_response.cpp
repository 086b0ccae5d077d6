#include <atoll/http/exchange.hpp>
#include <atoll/web/file_response.hpp>

#include <atoll/http/date.hpp>
#include <atoll/web/request_checks.hpp>

#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace atl::web {

namespace {

constexpr ContentCoding all_codings[] = {ContentCoding::br, ContentCoding::zstd,
                                         ContentCoding::gzip};

// Several ranges: multipart/byteranges, built in memory (bounded by
// max_ranges × the file; large files go by a single range in practice). Its
// own coroutine, with its own copies: the caller returns at once.
Task<> send_multipart(http::Conn& c, std::string_view mime, FileVariant v,
                      std::vector<ByteRange> ranges) {
  std::uint64_t total = 0;
  for (auto& r : ranges) total += r.last - r.first + 1;
  if (total > 8 * 1024 * 1024) {  // the whole file instead
    if (v.in_memory)
      co_await c.send(200, v.data);
    else
      co_await c.send_file(200, v.fd, 0, v.size);
    co_return;
  }
  static constexpr std::string_view boundary = "atoll-byteranges-5c1e";
  std::string body;
  body.reserve(total + ranges.size() * 128);
  for (auto& r : ranges) {
    body += "--";
    body += boundary;
    body += "\r\nContent-Type: ";
    body += mime;
    body += "\r\nContent-Range: bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) +
            "/" + std::to_string(v.size) + "\r\n\r\n";
    std::size_t len = std::size_t(r.last - r.first + 1);
    if (v.in_memory) {
      body.append(v.data.substr(std::size_t(r.first), len));
    } else {
      std::size_t at = body.size();
      body.resize(at + len);
      std::size_t got = 0;
      while (got < len) {
        ssize_t n = ::pread(v.fd, body.data() + at + got, len - got, off_t(r.first + got));
        if (n <= 0) throw std::runtime_error("file response: short read of a range");
        got += std::size_t(n);
      }
    }
    body += "\r\n";
  }
  body += "--";
  body += boundary;
  body += "--\r\n";
  auto& h = c.response_headers();
  h.remove("Content-Type");
  h.add("Content-Type", "multipart/byteranges; boundary=" + std::string(boundary));
  co_await c.send(206, body);
}

// The request headers the responder reads, found in one pass.
struct Asked {
  std::string_view range, if_range, if_match, if_none_match, if_modified_since, if_unmodified_since,
      accept_encoding;
};

Asked asked(const http::RequestHeaders& headers) noexcept {
  Asked a;
  auto take = [](std::string_view& slot, const http::Header& h, std::string_view name) {
    if (slot.empty() && http::iequals(h.name, name)) slot = h.value;
  };
  for (const http::Header& h : headers) {
    switch (h.name.size()) {
      case 5:
        take(a.range, h, "range");
        break;
      case 8:
        take(a.if_match, h, "if-match");
        take(a.if_range, h, "if-range");
        break;
      case 13:
        take(a.if_none_match, h, "if-none-match");
        break;
      case 15:
        take(a.accept_encoding, h, "accept-encoding");
        break;
      case 17:
        take(a.if_modified_since, h, "if-modified-since");
        break;
      case 19:
        take(a.if_unmodified_since, h, "if-unmodified-since");
        break;
      default:
        break;
    }
  }
  return a;
}

constexpr std::string_view precondition_failed = "Precondition Failed: the file has changed";

}  // namespace

CachedFile::~CachedFile() {
  for (auto& v : variants)
    if (v.fd >= 0) ::close(v.fd);
}

void CachedFile::ready(std::size_t max_ranges) noexcept {
  for (int i = 0; i < 4; ++i) {
    views_[i] = variants[i].view();
    response.variants[i] = variants[i] ? &views_[i] : nullptr;
  }
  response.mime = mime;
  response.mtime = mtime;
  response.last_modified = last_modified;
  response.max_ranges = max_ranges;
}

bool etag_list_matches(std::string_view list, std::string_view etag, bool weak) noexcept {
  std::size_t i = 0;
  auto skip = [&] {
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) ++i;
  };
  skip();
  if (i < list.size() && list[i] == '*')  // "*" alone: any current representation
    return list.find_first_not_of(" \t", i + 1) == std::string_view::npos;
  while (i < list.size()) {
    bool is_weak = false;
    if (list.substr(i).starts_with("W/")) {
      is_weak = true;
      i += 2;
    }
    if (i >= list.size() || list[i] != '"') return false;  // not an entity-tag list
    std::size_t end = list.find('"', i + 1);
    if (end == std::string_view::npos) return false;
    std::string_view tag = list.substr(i, end + 1 - i);  // quotes included, like `etag`
    if (tag == etag && (weak || !is_weak)) return true;
    i = end + 1;
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t')) ++i;
    if (i < list.size() && list[i] != ',') return false;
    skip();
  }
  return false;
}

// Not a coroutine: the checks run now and the answer's own Task is
// returned, so the usual 200 or 304 costs no frame of its own. (What the
// returned Task reads, the variant's bytes, belongs to the caller's cache.)
Task<> send_file_response(http::Conn& c, const FileResponse& f, int status) {
  auto& h = c.response_headers();
  const Asked ask = asked(c.headers());
  std::string_view range = status == 200 ? ask.range : std::string_view{};
  // The representation: a precompressed variant when accepted and no range
  // is asked for (ranges are of the identity bytes).
  const FileVariant* v = f.variants[0];
  ContentCoding offered[3];
  std::size_t n = 0;
  for (ContentCoding coding : all_codings)
    if (const FileVariant* sib = f.variants[1 + int(coding)]; sib && *sib) offered[n++] = coding;
  if (n) {
    h.append_token("Vary", "Accept-Encoding");
    if (!ask.accept_encoding.empty() && range.empty())
      if (auto chosen =
              negotiate_coding(ask.accept_encoding, std::span<const ContentCoding>(offered, n)))
        v = f.variants[1 + int(*chosen)];
  }

  bool not_modified = false;
  if (status == 200) {
    // Preconditions, RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since
    // (412); then If-None-Match, else If-Modified-Since (304).
    bool failed = false;
    if (!ask.if_match.empty()) {
      failed = !etag_list_matches(ask.if_match, v->etag, false);
    } else if (!ask.if_unmodified_since.empty() && f.mtime >= 0) {
      if (auto t = http::parse_http_date(ask.if_unmodified_since)) failed = f.mtime > *t;
    }
    if (failed) return http::send_error(c, 412, precondition_failed);
    if (!ask.if_none_match.empty()) {
      not_modified = etag_list_matches(ask.if_none_match, v->etag, true);
    } else if (!ask.if_modified_since.empty() && f.mtime >= 0) {
      if (auto t = http::parse_http_date(ask.if_modified_since)) not_modified = f.mtime <= *t;
    }
  }
  h.add(*v->headers);
  if (f.decorate) (*f.decorate)(h);
  if (not_modified) return c.send(304, "");

  if (!range.empty() && v == f.variants[0]) {
    bool honour = true;
    if (std::string_view if_range = ask.if_range; !if_range.empty())
      honour = if_range.front() == '"' || if_range.starts_with("W/")
                   ? etag_list_matches(if_range, v->etag, false) &&
                         if_range.find(',') == std::string_view::npos
                   : !f.last_modified.empty() && if_range == f.last_modified;
    std::vector<ByteRange> ranges;
    if (honour && parse_ranges(range, v->size, f.max_ranges, ranges)) {
      if (ranges.empty()) {
        h.set("Content-Range", "bytes */" + std::to_string(v->size));
        h.remove("ETag");
        return c.send(416, "");
      }
      if (ranges.size() == 1) {
        auto [a, b] = ranges[0];
        h.add("Content-Range", "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" +
                                   std::to_string(v->size));
        if (v->in_memory)
          return c.send(206, v->data.substr(std::size_t(a), std::size_t(b - a + 1)));
        return c.send_file(206, v->fd, off_t(a), b - a + 1);
      }
      return send_multipart(c, f.mime, *v, std::move(ranges));
    }
  }
  if (v->in_memory) return c.send(status, v->data);
  return c.send_file(status, v->fd, 0, v->size);
}

}  // namespace atl::web
