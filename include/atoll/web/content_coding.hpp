#pragma once
// Content codings: the one type and the one Accept-Encoding parser that the
// compression middleware, static files and the site host share.
#include <optional>
#include <span>
#include <string_view>

namespace atl::web {

/// The content codings atoll produces.
enum class ContentCoding { br, zstd, gzip };

/// The token for a coding in Content-Encoding ("br", "zstd", "gzip").
std::string_view coding_name(ContentCoding coding) noexcept;

/// The coding to use for `accept_encoding`, among `offered` (in server
/// preference order): the highest q-value wins, `*` stands for any coding not
/// named, q=0 refuses, "x-gzip" counts as gzip. nullopt: send identity.
std::optional<ContentCoding> negotiate_coding(std::string_view accept_encoding,
                                              std::span<const ContentCoding> offered) noexcept;

}  // namespace atl::web
