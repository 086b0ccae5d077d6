#pragma once
// Request body parsers: JSON, URL-encoded forms and multipart/form-data.
//
// The body is read (within the limit for its type) and parsed by its
// Content-Type into `conn.assign<ParsedBody>()`; handlers read it from there.
// A request without a body, or with a type this parser does not take, gets
// an empty ParsedBody (kind none) and its body is left for the handler,
// unless `required` says a parsed body is the only acceptable kind.
//
// Errors end the request before the handler runs:
//   400  malformed: bad JSON (with line and column), a bad percent-escape, a
//        multipart body without its boundary, a part without a name, …
//   413  over a limit below; the reason names the limit
//   415  a type it does not take when `required`; a request Content-Encoding
//        (gzip'd bodies are not inflated: that is a decompression bomb
//        waiting to happen); JSON in a charset other than UTF-8
//
// | option          | default | why                                                   |
// |-----------------|---------|-------------------------------------------------------|
// | json            | true    | parse application/json and */*+json                   |
// | form            | true    | parse application/x-www-form-urlencoded               |
// | multipart       | true    | parse multipart/form-data                             |
// | required        | false   | true: a body of another type (or none declared) → 415 |
// | json_limit      | 1 MiB   | a JSON tree costs several times its text in memory    |
// | form_limit      | 64 KiB  | typed-in forms are small; a bigger one is abuse       |
// | multipart_limit | 10 MiB  | uploads are held in memory: this bounds one request;  |
// |                 |         | raise it on the routes that take big files            |
// | max_json_depth  | 128     | deep nesting exhausts the stack of code that walks    |
// |                 |         | the tree recursively (serde_json's limit)             |
// | max_fields      | 1000    | URL-encoded fields: CPU and memory spent on floods    |
// |                 |         | (PHP's max_input_vars)                                |
// | max_parts       | 100     | multipart parts, fields and files: each costs headers |
// |                 |         | and bookkeeping, and real forms have few              |
// | max_field_size  | 64 KiB  | one multipart text field, held as a string            |
// | max_file_size   | 8 MiB   | one uploaded file, held in memory                     |
// | max_part_header | 8 KiB   | one part's header block: the request-header bound     |
//
// The parser's limit replaces the connection's body limit (HttpOptions::
// max_body) for the request it reads, so a route can take big uploads.
#include <atoll/web/pipeline.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atl::web {

/// One file from a multipart form.
struct UploadedFile {
  std::string field;         // the form field's name
  std::string filename;      // as the client sent it: untrusted, never use it as a path
  std::string content_type;  // "application/octet-stream" when the part had none
  std::string data;
};

/// What the body parser found; in `conn.assign<ParsedBody>()`.
struct ParsedBody {
  enum class Kind { none, json, form, multipart };
  Kind kind = Kind::none;
  nlohmann::json json;  // kind json
  std::vector<std::pair<std::string, std::string>>
      fields;                       // form and multipart text fields, in order
  std::vector<UploadedFile> files;  // multipart files, in order

  /// The first field called `name`, or nullopt.
  std::optional<std::string_view> field(std::string_view name) const noexcept;
  /// The first file from field `name`, or nullptr.
  const UploadedFile* file(std::string_view name) const noexcept;
};

struct BodyParserOptions {
  bool json = true;
  bool form = true;
  bool multipart = true;
  bool required = false;
  std::size_t json_limit = 1024 * 1024;
  std::size_t form_limit = 64 * 1024;
  std::size_t multipart_limit = 10 * 1024 * 1024;
  std::size_t max_json_depth = 128;
  std::size_t max_fields = 1000;
  std::size_t max_parts = 100;
  std::size_t max_field_size = 64 * 1024;
  std::size_t max_file_size = 8 * 1024 * 1024;
  std::size_t max_part_header = 8 * 1024;
};

/// Reads and parses the body of `c` into `c.assign<ParsedBody>()` (once: a
/// second call finds it parsed). Throws http::HttpError 400, 413 or 415.
Task<> parse_body(Conn& c, const BodyParserOptions& options = {});

/// Parses a body already in memory as parse_body() parses a request's, given
/// its Content-Type header value (the parsers with no Conn: tests, fuzzing).
/// A body over its type's limit is a 413; Content-Encoding is not looked at.
ParsedBody parse_body_bytes(std::string_view content_type, std::string_view body,
                            const BodyParserOptions& options = {});

/// parse_body() before the rest of the pipeline.
Middleware body_parser(BodyParserOptions options = {});

}  // namespace atl::web
