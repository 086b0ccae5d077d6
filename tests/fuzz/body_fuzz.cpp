// body_fuzz: arbitrary bytes through the request body parsers (URL-encoded
// forms and multipart/form-data) by web::parse_body_bytes(), the code the
// body_parser middleware runs once it has read a body.
//
// An input is a Content-Type value, a newline, then the body. JSON is
// nlohmann's and fuzzed upstream, so it is switched off here. The parser may
// refuse a body only with http::HttpError 400, 413 or 415; what it accepts
// must keep to the options' limits (fields, parts, field and file sizes), and
// a URL-encoded form re-encoded here must parse back to the same fields.
// Anything else is a crash.
//
//   cmake --preset fuzz && cmake --build build/fuzz && tests/fuzz/run.sh 60
#include <atoll/http/conn.hpp>
#include <atoll/web/body_parser.hpp>

#include <cstdint>
#include <string>
#include <string_view>

using atl::web::ParsedBody;

namespace {

// Small limits, so that inputs of a few KiB reach every refusal path.
atl::web::BodyParserOptions fuzz_options() {
  atl::web::BodyParserOptions o;
  o.json = false;
  o.form_limit = 4096;
  o.multipart_limit = 8192;
  o.max_fields = 16;
  o.max_parts = 8;
  o.max_field_size = 512;
  o.max_file_size = 2048;
  o.max_part_header = 256;
  return o;
}

std::string form_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out += char(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

void check_limits(const ParsedBody& p, const atl::web::BodyParserOptions& o) {
  if (p.kind == ParsedBody::Kind::form) {
    if (p.fields.size() > o.max_fields || !p.files.empty()) __builtin_trap();
  } else if (p.kind == ParsedBody::Kind::multipart) {
    if (p.fields.size() + p.files.size() > o.max_parts) __builtin_trap();
    for (const auto& [name, value] : p.fields)
      if (value.size() > o.max_field_size) __builtin_trap();
    for (const auto& f : p.files)
      if (f.data.size() > o.max_file_size || f.content_type.empty()) __builtin_trap();
  } else if (!p.fields.empty() || !p.files.empty()) {
    __builtin_trap();  // kind none parses nothing
  }
}

// Every field of a parsed form, encoded again, parses back to itself.
void check_form_round_trip(const ParsedBody& p, const atl::web::BodyParserOptions& o) {
  std::string body;
  for (const auto& [name, value] : p.fields) {
    if (!body.empty()) body += '&';
    body += form_encode(name) + "=" + form_encode(value);
  }
  atl::web::BodyParserOptions big = o;
  big.form_limit = 1 << 20;  // the encoding is up to three times longer
  ParsedBody again = atl::web::parse_body_bytes("application/x-www-form-urlencoded", body, big);
  if (again.kind != ParsedBody::Kind::form || again.fields != p.fields) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const atl::web::BodyParserOptions options = fuzz_options();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t nl = input.find('\n');
  if (nl == std::string_view::npos) return 0;
  std::string_view type = input.substr(0, nl);
  std::string_view body = input.substr(nl + 1);

  ParsedBody parsed;
  try {
    parsed = atl::web::parse_body_bytes(type, body, options);
  } catch (const atl::http::HttpError& e) {
    if (e.status() != 400 && e.status() != 413 && e.status() != 415) __builtin_trap();
    if (std::string_view(e.what()).empty()) __builtin_trap();  // every refusal says why
    return 0;
  }
  check_limits(parsed, options);
  if (parsed.kind == ParsedBody::Kind::form) check_form_round_trip(parsed, options);
  return 0;
}
