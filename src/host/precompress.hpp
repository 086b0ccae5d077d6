#pragma once
// Precompression at publish time: each text file is compressed once, at the
// codecs' strongest settings, and served as is ever after.
#include <string>
#include <string_view>

namespace atl::host {

std::string gzip_max(std::string_view in);
std::string brotli_max(std::string_view in);
std::string zstd_max(std::string_view in);

}  // namespace atl::host
