#pragma once
// Small request checks shared by the file-serving parts (static files here,
// the site host above): content-coding negotiation and path safety.
#include <string_view>

namespace atl::web {

/// The q-value `header` (an Accept-Encoding value) gives `coding`: its own
/// entry, else "*", else 0. A malformed q counts as the number it starts with.
double accepted_quality(std::string_view header, std::string_view coding) noexcept;

/// True if `path` (decoded, starting with '/') has no "." or ".." segment,
/// no backslash and no NUL: it cannot name anything outside a root.
bool is_safe_path(std::string_view path) noexcept;

}  // namespace atl::web
