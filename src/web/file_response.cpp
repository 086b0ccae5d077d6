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
// max_ranges × the file; large files go by a single range in practice).
Task<bool> send_multipart(http::Conn& c, const FileResponse& f, const FileVariant& v,
                          const std::vector<ByteRange>& ranges) {
  std::uint64_t total = 0;
  for (auto& r : ranges) total += r.last - r.first + 1;
  if (total > 8 * 1024 * 1024) co_return false;  // the whole file instead
  static constexpr std::string_view boundary = "atoll-byteranges-5c1e";
  std::string body;
  body.reserve(total + ranges.size() * 128);
  for (auto& r : ranges) {
    body += "--";
    body += boundary;
    body += "\r\nContent-Type: ";
    body += f.mime;
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
  co_return true;
}

}  // namespace

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

Task<> send_file_response(http::Conn& c, const FileResponse& f, int status) {
  auto& h = c.response_headers();
  std::string_view range = status == 200 ? c.header("range") : std::string_view{};
  // The representation: a precompressed variant when accepted and no range
  // is asked for (ranges are of the identity bytes).
  const FileVariant* v = f.variants[0];
  ContentCoding offered[3];
  std::size_t n = 0;
  for (ContentCoding coding : all_codings)
    if (const FileVariant* sib = f.variants[1 + int(coding)]; sib && *sib) offered[n++] = coding;
  if (n) {
    h.append_token("Vary", "Accept-Encoding");
    std::string_view ae = c.header("accept-encoding");
    if (!ae.empty() && range.empty())
      if (auto chosen = negotiate_coding(ae, std::span<const ContentCoding>(offered, n)))
        v = f.variants[1 + int(*chosen)];
  }

  if (status == 200) {
    // Preconditions, RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since
    // (412); then If-None-Match, else If-Modified-Since (304).
    bool failed = false;
    if (std::string_view im = c.header("if-match"); !im.empty()) {
      failed = !etag_list_matches(im, v->etag, false);
    } else if (std::string_view ius = c.header("if-unmodified-since");
               !ius.empty() && f.mtime >= 0) {
      if (auto t = http::parse_http_date(ius)) failed = f.mtime > *t;
    }
    if (failed) {
      co_await http::send_error(c, 412, http::error_line(412, "the file has changed"));
      co_return;
    }
    bool not_modified = false;
    if (std::string_view inm = c.header("if-none-match"); !inm.empty()) {
      not_modified = etag_list_matches(inm, v->etag, true);
    } else if (std::string_view ims = c.header("if-modified-since"); !ims.empty() && f.mtime >= 0) {
      if (auto t = http::parse_http_date(ims)) not_modified = f.mtime <= *t;
    }
    h.add(*v->headers);
    if (f.decorate) (*f.decorate)(h);
    if (not_modified) {
      co_await c.send(304, "");
      co_return;
    }
  } else {
    h.add(*v->headers);
    if (f.decorate) (*f.decorate)(h);
  }

  if (!range.empty() && v == f.variants[0]) {
    bool honour = true;
    if (std::string_view if_range = c.header("if-range"); !if_range.empty())
      honour = if_range.front() == '"' || if_range.starts_with("W/")
                   ? etag_list_matches(if_range, v->etag, false) &&
                         if_range.find(',') == std::string_view::npos
                   : !f.last_modified.empty() && if_range == f.last_modified;
    std::vector<ByteRange> ranges;
    if (honour && parse_ranges(range, v->size, f.max_ranges, ranges)) {
      if (ranges.empty()) {
        h.set("Content-Range", "bytes */" + std::to_string(v->size));
        h.remove("ETag");
        co_await c.send(416, "");
        co_return;
      }
      if (ranges.size() == 1) {
        auto [a, b] = ranges[0];
        h.add("Content-Range", "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" +
                                   std::to_string(v->size));
        if (v->in_memory)
          co_await c.send(206, v->data.substr(std::size_t(a), std::size_t(b - a + 1)));
        else
          co_await c.send_file(206, v->fd, off_t(a), b - a + 1);
        co_return;
      }
      if (co_await send_multipart(c, f, *v, ranges)) co_return;
    }
  }
  if (v->in_memory)
    co_await c.send(status, v->data);
  else
    co_await c.send_file(status, v->fd, 0, v->size);
}

}  // namespace atl::web
