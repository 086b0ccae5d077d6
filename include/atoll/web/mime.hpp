#pragma once
// File extension → media type, for the types the web serves.
#include <string_view>

namespace atl::web {

/// The Content-Type for `path` by its extension (case-insensitive), with a
/// charset for text; "application/octet-stream" when unknown.
std::string_view mime_type(std::string_view path) noexcept;
/// True for types worth compressing (text, JSON, JS, SVG, …).
bool is_compressible(std::string_view mime) noexcept;

}  // namespace atl::web
