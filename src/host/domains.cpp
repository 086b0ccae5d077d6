// Custom domains: one canonical spelling, so that a domain is unique, and a
// request's Host header (lowercased, trailing dot dropped) finds it.
#include <atoll/host/database.hpp>

#include <idn2.h>

#include <stdexcept>
#include <string>

namespace atl::host {

bool is_under(std::string_view name, std::string_view parent) {
  return name.size() > parent.size() + 1 && name.ends_with(parent) &&
         name[name.size() - parent.size() - 1] == '.';
}

std::string normalise_domain(std::string_view in, std::string_view base_domain) {
  std::string shown(in.substr(0, 80));
  auto bad = [&](const std::string& why) -> std::invalid_argument {
    return std::invalid_argument("domain '" + shown + "' " + why);
  };
  if (in.empty()) throw std::invalid_argument("a domain cannot be empty");
  std::string_view name = in;
  bool wildcard = name.starts_with("*.");
  if (wildcard) name.remove_prefix(2);
  if (name.find('*') != std::string_view::npos)
    throw bad("has a '*' that is not the whole first label (a wildcard is *.example.com)");
  if (name.ends_with('.')) name.remove_suffix(1);  // the root's dot: same name
  bool ascii = true;
  for (unsigned char c : name) ascii = ascii && c < 0x80;
  std::string d;
  if (ascii) {
    d.assign(name);
    for (auto& c : d)
      if (c >= 'A' && c <= 'Z') c = char(c | 0x20);
  } else {
    // IDNA2008 with the UTS #46 mapping (what browsers send): case folded,
    // normalised, then each label as "xn--" punycode.
    std::string owned(name);
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(owned.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK)
      throw bad(std::string("is not a valid international name: ") + idn2_strerror(rc));
    d = out;
    idn2_free(out);
  }
  if (d.empty()) throw bad("has no labels");
  if (d.size() > 253) throw bad("is longer than 253 bytes");
  std::size_t labels = 0;
  bool all_digits_last = false;
  for (std::size_t pos = 0; pos <= d.size();) {
    std::size_t dot = d.find('.', pos);
    if (dot == std::string::npos) dot = d.size();
    std::string_view label = std::string_view(d).substr(pos, dot - pos);
    if (label.empty()) throw bad("has an empty label ('..', or a leading dot)");
    if (label.size() > 63) throw bad("has a label longer than 63 bytes");
    bool digits = true;
    for (char c : label) {
      bool ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ldh)
        throw bad(
            "may hold only letters, digits, '-' and '.' (a space, '_', ':' or '/' is not a "
            "host name)");
      digits = digits && c >= '0' && c <= '9';
    }
    if (label.front() == '-' || label.back() == '-')
      throw bad("has a label that starts or ends with '-'");
    if (ascii && label.starts_with("xn--")) {
      // An A-label must decode: a made-up one would match no browser's.
      std::string owned(label);
      char* out = nullptr;
      int rc = idn2_to_unicode_8z8z(owned.c_str(), &out, 0);
      idn2_free(out);
      if (rc != IDN2_OK) throw bad("has an 'xn--' label that is not valid punycode");
    }
    ++labels;
    all_digits_last = digits;
    pos = dot + 1;
  }
  if (all_digits_last) throw bad("is an IP address, not a domain");
  if (!base_domain.empty() && (d == base_domain || is_under(d, base_domain)))
    throw bad("is under the base domain '" + std::string(base_domain) +
              "', where every site already answers as NAME." + std::string(base_domain));
  if (labels < 2) throw bad("needs at least two labels, as in example.com");
  return wildcard ? "*." + d : d;
}

}  // namespace atl::host
