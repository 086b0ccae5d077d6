#pragma once
// Header parameters ("form-data; name=\"a\"") and multipart/form-data, for
// the body parser.
#include <atoll/web/body_parser.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atl::web::detail {

/// A header value split into its leading value and its parameters.
struct HeaderParams {
  std::string_view value;  // "multipart/form-data", "form-data"; trimmed, as sent
  std::vector<std::pair<std::string, std::string>> params;  // names lowercased, values unquoted

  /// The parameter `name` (lowercase), or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
};

/// Parses `value; a=b; c="d \"e\""`; nullopt when a quoted string is not
/// closed or a parameter has no name.
std::optional<HeaderParams> parse_header_params(std::string_view header);

/// Parses a multipart/form-data `body` delimited by `boundary` into `out`'s
/// fields and files. Throws http::HttpError 400 (malformed) or 413 (over a
/// limit in `options`).
void parse_multipart(std::string_view body, std::string_view boundary,
                     const BodyParserOptions& options, ParsedBody& out);

}  // namespace atl::web::detail
