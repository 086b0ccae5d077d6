#include <atoll/web/body_parser.hpp>

#include "web/multipart.hpp"

#include <memory>

namespace atl::web {

namespace {

using http::HttpError;
using http::iequals;

// Longest reason echoed from the JSON parser: it quotes the client's bytes.
constexpr std::size_t max_reason = 200;

bool is_json_type(std::string_view type) noexcept {
  if (iequals(type, "application/json")) return true;
  return type.size() > 5 && iequals(type.substr(type.size() - 5), "+json") &&
         type.find('/') != std::string_view::npos;
}

// Refuses nesting deeper than `max` before the parser builds anything.
void check_depth(std::string_view text, std::size_t max) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        throw HttpError(413, "JSON body is nested deeper than " + std::to_string(max) + " levels");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

nlohmann::json parse_json(std::string_view text, std::size_t max_depth) {
  check_depth(text, max_depth);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: …"
    std::string_view what = e.what();
    if (auto close = what.find("] ");
        what.starts_with("[json.exception") && close != std::string_view::npos)
      what.remove_prefix(close + 2);
    if (what.size() > max_reason) what = what.substr(0, max_reason);
    throw HttpError(400, "malformed JSON body: " + std::string(what));
  }
}

int hex(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded, strictly: a bad escape is an error, not
// a literal '%' (which would let two parsers disagree about the same body).
std::string form_decode(std::string_view s, std::size_t offset) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
        throw HttpError(
            400, "malformed form body: bad percent-escape at byte " + std::to_string(offset + i));
      out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void parse_form(std::string_view body, std::size_t max_fields, ParsedBody& out) {
  std::size_t offset = 0;
  while (offset <= body.size()) {
    std::size_t amp = body.find('&', offset);
    std::size_t end = amp == std::string_view::npos ? body.size() : amp;
    std::string_view item = body.substr(offset, end - offset);
    if (!item.empty()) {
      if (out.fields.size() >= max_fields)
        throw HttpError(413, "form body has more than " + std::to_string(max_fields) + " fields");
      std::size_t eq = item.find('=');
      std::string name = form_decode(item.substr(0, eq), offset);
      std::string value = eq == std::string_view::npos
                              ? std::string()
                              : form_decode(item.substr(eq + 1), offset + eq + 1);
      out.fields.emplace_back(std::move(name), std::move(value));
    }
    offset = end + 1;
  }
}

std::string accepted_types(const BodyParserOptions& opt) {
  std::string s;
  auto add = [&](bool on, const char* type) {
    if (!on) return;
    if (!s.empty()) s += ", ";
    s += type;
  };
  add(opt.json, "application/json");
  add(opt.form, "application/x-www-form-urlencoded");
  add(opt.multipart, "multipart/form-data");
  return s.empty() ? "nothing" : s;
}

[[noreturn]] void unsupported(std::string_view type, const BodyParserOptions& opt) {
  throw HttpError(
      415, (type.empty() ? std::string("a request body needs a Content-Type")
                         : "unsupported Content-Type '" + std::string(type.substr(0, 100)) + "'") +
               "; this endpoint takes " + accepted_types(opt));
}

// What the Content-Type asks for, decided before the body is read.
struct BodyPlan {
  ParsedBody::Kind kind = ParsedBody::Kind::none;
  std::size_t limit = 0;  // the body limit for that kind
  std::string boundary;   // multipart; owned, so it outlives the header across the read
};

BodyPlan plan_body(std::string_view header, const BodyParserOptions& opt) {
  auto type = detail::parse_header_params(header);
  if (!type) throw HttpError(400, "malformed Content-Type header");
  BodyPlan plan;
  if (opt.json && is_json_type(type->value)) {
    // RFC 8259 §8.1: JSON between systems is UTF-8.
    if (auto charset = type->get("charset"); charset && !iequals(*charset, "utf-8"))
      throw HttpError(415, "JSON must be UTF-8, not '" + std::string(charset->substr(0, 50)) + "'");
    plan.kind = ParsedBody::Kind::json;
    plan.limit = opt.json_limit;
  } else if (opt.form && iequals(type->value, "application/x-www-form-urlencoded")) {
    plan.kind = ParsedBody::Kind::form;
    plan.limit = opt.form_limit;
  } else if (opt.multipart && iequals(type->value, "multipart/form-data")) {
    auto boundary = type->get("boundary");
    if (!boundary || boundary->empty() || boundary->size() > 70)
      throw HttpError(400, "multipart/form-data needs a boundary parameter of 1 to 70 characters");
    plan.kind = ParsedBody::Kind::multipart;
    plan.limit = opt.multipart_limit;
    plan.boundary = std::string(*boundary);
  } else if (opt.required) {
    unsupported(type->value, opt);
  }
  return plan;
}

// Parses `body` (within the plan's limit) into `out`; its kind is set once
// the whole body has parsed.
void parse_planned(const BodyPlan& plan, std::string_view body, const BodyParserOptions& opt,
                   ParsedBody& out) {
  switch (plan.kind) {
    case ParsedBody::Kind::json:
      out.json = parse_json(body, opt.max_json_depth);
      break;
    case ParsedBody::Kind::form:
      parse_form(body, opt.max_fields, out);
      break;
    case ParsedBody::Kind::multipart:
      detail::parse_multipart(body, plan.boundary, opt, out);
      break;
    case ParsedBody::Kind::none:
      return;
  }
  out.kind = plan.kind;
}

}  // namespace

std::optional<std::string_view> ParsedBody::field(std::string_view name) const noexcept {
  for (const auto& [k, v] : fields)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

const UploadedFile* ParsedBody::file(std::string_view name) const noexcept {
  for (const auto& f : files)
    if (f.field == name) return &f;
  return nullptr;
}

ParsedBody parse_body_bytes(std::string_view content_type, std::string_view body,
                            const BodyParserOptions& opt) {
  ParsedBody parsed;
  BodyPlan plan = plan_body(content_type, opt);
  if (plan.kind == ParsedBody::Kind::none) return parsed;
  if (body.size() > plan.limit)
    throw HttpError(413,
                    "request body is over the limit of " + std::to_string(plan.limit) + " bytes");
  parse_planned(plan, body, opt, parsed);
  return parsed;
}

Task<> parse_body(Conn& c, const BodyParserOptions& opt) {
  if (c.find_assign<ParsedBody>()) co_return;
  ParsedBody& parsed = c.assign<ParsedBody>();
  if (!c.has_body()) co_return;
  if (auto coding = c.header("content-encoding"); !coding.empty() && !iequals(coding, "identity"))
    throw HttpError(415, "request Content-Encoding '" + std::string(coding.substr(0, 50)) +
                             "' is not accepted; send the body uncompressed");
  // The type is judged before the body is read: a wrong one costs no upload.
  BodyPlan plan = plan_body(c.header("content-type"), opt);
  if (plan.kind == ParsedBody::Kind::none) co_return;
  std::string body = co_await c.read_body(plan.limit);
  parse_planned(plan, body, opt, parsed);
}

Middleware body_parser(BodyParserOptions options) {
  auto opt = std::make_shared<const BodyParserOptions>(std::move(options));
  return [opt](Conn& c, const App& next) -> Task<> {
    auto keep = opt;  // the frame holds the options, whatever happens to the closure
    co_await parse_body(c, *keep);
    co_await next(c);
  };
}

}  // namespace atl::web
