#include "web/multipart.hpp"

#include <cctype>

namespace atl::web::detail {

namespace {

using http::HttpError;
using http::iequals;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void malformed(const std::string& what) {
  throw HttpError(400, "malformed multipart body: " + what);
}

// A part's headers: only the two that form-data uses.
struct PartHeaders {
  std::string_view disposition;
  std::string_view content_type;
};

PartHeaders parse_part_headers(std::string_view block, std::size_t index) {
  PartHeaders h;
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.empty()) continue;
    // Folded lines are obsolete (RFC 9112 §5.2) and a smuggling vector.
    if (line.front() == ' ' || line.front() == '\t')
      malformed("part " + std::to_string(index) + " has a folded header line");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      malformed("part " + std::to_string(index) + " has a header line without a name");
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-disposition"))
      h.disposition = value;
    else if (iequals(name, "content-type"))
      h.content_type = value;
  }
  return h;
}

// Adds one part to `out` by its Content-Disposition.
void add_part(const PartHeaders& h, std::string_view content, std::size_t index,
              const BodyParserOptions& opt, ParsedBody& out) {
  std::string where = "part " + std::to_string(index);
  if (h.disposition.empty()) malformed(where + " has no Content-Disposition header");
  auto disposition = parse_header_params(h.disposition);
  if (!disposition) malformed(where + " has a malformed Content-Disposition header");
  if (!iequals(disposition->value, "form-data")) malformed(where + " is not 'form-data'");
  auto name = disposition->get("name");
  if (!name) malformed(where + " has no name in its Content-Disposition");
  auto filename = disposition->get("filename");
  // RFC 7578 §4.2 discourages filename*, but some clients send it for
  // non-ASCII names: take it when it is the UTF-8 form.
  std::optional<std::string> extended;
  if (auto star = disposition->get("filename*");
      star && star->size() > 7 && iequals(star->substr(0, 7), "utf-8''")) {
    extended = http::percent_decode_path(star->substr(7));
    if (!extended) malformed(where + " has a bad percent-escape in filename*");
  }
  if (filename || extended) {
    if (content.size() > opt.max_file_size)
      throw HttpError(413, "uploaded file '" + std::string(*name) + "' is over the limit of " +
                               std::to_string(opt.max_file_size) + " bytes");
    UploadedFile f;
    f.field = *name;
    f.filename = extended ? std::move(*extended) : std::string(*filename);
    f.content_type =
        h.content_type.empty() ? "application/octet-stream" : std::string(h.content_type);
    f.data.assign(content);
    out.files.push_back(std::move(f));
  } else {
    if (content.size() > opt.max_field_size)
      throw HttpError(413, "form field '" + std::string(*name) + "' is over the limit of " +
                               std::to_string(opt.max_field_size) + " bytes");
    out.fields.emplace_back(std::string(*name), std::string(content));
  }
}

}  // namespace

std::optional<std::string_view> HeaderParams::get(std::string_view name) const noexcept {
  for (const auto& [k, v] : params)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::optional<HeaderParams> parse_header_params(std::string_view header) {
  HeaderParams out;
  std::size_t semi = header.find(';');
  out.value = trim(header.substr(0, semi));
  if (semi == std::string_view::npos) return out;
  std::string_view rest = header.substr(semi + 1);
  while (!rest.empty()) {
    rest = trim(rest);
    if (rest.empty()) break;
    if (rest.front() == ';') {
      rest.remove_prefix(1);
      continue;
    }
    std::size_t stop = rest.find_first_of("=;");
    std::string_view name = trim(rest.substr(0, stop));
    if (name.empty()) return std::nullopt;
    std::string value;
    if (stop == std::string_view::npos || rest[stop] == ';') {
      rest = stop == std::string_view::npos ? std::string_view{} : rest.substr(stop);
    } else {
      rest = trim(rest.substr(stop + 1));
      if (!rest.empty() && rest.front() == '"') {
        std::size_t i = 1;
        for (; i < rest.size() && rest[i] != '"'; ++i) {
          if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
          value += rest[i];
        }
        if (i >= rest.size()) return std::nullopt;  // the quoted string never closed
        rest.remove_prefix(i + 1);
      } else {
        std::size_t end = rest.find(';');
        value = trim(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
      }
    }
    out.params.emplace_back(lower(name), std::move(value));
  }
  return out;
}

void parse_multipart(std::string_view body, std::string_view boundary, const BodyParserOptions& opt,
                     ParsedBody& out) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string next_delimiter = "\r\n" + delimiter;
  // The first delimiter opens the body or follows a preamble line.
  std::size_t pos;
  if (body.starts_with(delimiter)) {
    pos = delimiter.size();
  } else {
    std::size_t at = body.find(next_delimiter);
    if (at == std::string_view::npos) malformed("no boundary line '" + delimiter + "'");
    pos = at + next_delimiter.size();
  }
  for (std::size_t index = 1;; ++index) {
    if (body.substr(pos, 2) == "--") return;  // the close delimiter; an epilogue is ignored
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t'))
      ++pos;  // transport padding
    if (body.substr(pos, 2) != "\r\n") malformed("a boundary line is not followed by CRLF");
    pos += 2;
    if (index > opt.max_parts)
      throw HttpError(413,
                      "multipart body has more than " + std::to_string(opt.max_parts) + " parts");
    // The part's headers end at an empty line (which may come first: no headers).
    std::size_t content_start;
    std::string_view header_block;
    if (body.substr(pos, 2) == "\r\n") {
      content_start = pos + 2;
    } else {
      std::size_t window = opt.max_part_header + 4;
      std::size_t end = body.substr(pos, window).find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (body.size() - pos >= window)
          throw HttpError(413, "headers of multipart part " + std::to_string(index) +
                                   " are over the limit of " + std::to_string(opt.max_part_header) +
                                   " bytes");
        malformed("the headers of part " + std::to_string(index) + " do not end");
      }
      header_block = body.substr(pos, end);
      content_start = pos + end + 4;
    }
    std::size_t content_end = body.find(next_delimiter, content_start);
    if (content_end == std::string_view::npos)
      malformed("it ends without the closing boundary '" + delimiter + "--'");
    add_part(parse_part_headers(header_block, index),
             body.substr(content_start, content_end - content_start), index, opt, out);
    pos = content_end + next_delimiter.size();
  }
}

}  // namespace atl::web::detail
