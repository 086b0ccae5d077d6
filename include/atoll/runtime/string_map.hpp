#pragma once
// StringMap<V>: an unordered_map keyed by std::string that can be searched
// with a std::string_view, so a lookup on a hot path builds no string.
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace atl::runtime {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace atl::runtime
