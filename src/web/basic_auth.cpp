#include <atoll/http/exchange.hpp>
#include <atoll/web/basic_auth.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace atl::web {

namespace {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view s) {
  Digest d{};
  unsigned int len = 0;
  if (!EVP_Digest(s.data(), s.size(), d.data(), &len, EVP_sha256(), nullptr) || len != d.size())
    throw std::runtime_error("basic_auth: SHA-256 failed");
  return d;
}

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 (RFC 4648 §4), padding optional; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned bits = 0;
  int count = 0;
  for (char c : in) {
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | unsigned(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += char((bits >> count) & 0xff);
    }
  }
  return out;
}

struct Account {
  std::string name;
  Digest user;
  Digest password;
};

struct Gate {
  std::string challenge;  // the WWW-Authenticate value
  std::vector<Account> accounts;
  std::function<bool(std::string_view, std::string_view)> verify;

  // The matching account's name, looking at every account whatever happens.
  std::optional<std::string> check(std::string_view user, std::string_view password) const {
    if (verify) return verify(user, password) ? std::optional<std::string>(user) : std::nullopt;
    Digest u = sha256(user), p = sha256(password);
    int found = -1;
    for (std::size_t i = 0; i < accounts.size(); ++i) {
      // Both comparisons always run; `&` not `&&`: no short cut to time.
      int hit = int(CRYPTO_memcmp(u.data(), accounts[i].user.data(), u.size()) == 0) &
                int(CRYPTO_memcmp(p.data(), accounts[i].password.data(), p.size()) == 0);
      found = hit ? int(i) : found;
    }
    if (found < 0) return std::nullopt;
    return accounts[std::size_t(found)].name;
  }
};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      throw std::invalid_argument("basic_auth: the realm must not hold control characters");
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Middleware basic_auth(BasicAuthOptions options) {
  if (options.users.empty() && !options.verify)
    throw std::invalid_argument("basic_auth: no users and no verify function: nobody could pass");
  auto gate = std::make_shared<Gate>();
  gate->challenge = "Basic realm=" + quoted(options.realm) + ", charset=\"UTF-8\"";
  gate->verify = std::move(options.verify);
  for (const auto& [user, password] : options.users) {
    if (user.find(':') != std::string::npos)
      throw std::invalid_argument("basic_auth: user name '" + user +
                                  "' holds ':', which Basic cannot carry");
    gate->accounts.push_back({user, sha256(user), sha256(password)});
  }
  return [gate = std::shared_ptr<const Gate>(gate)](Conn& c, const App& next) -> Task<> {
    auto keep = gate;  // the frame holds the gate, whatever happens to the closure
    std::string_view header = c.header("authorization");
    std::string_view reason = "credentials required";
    std::optional<std::string> user;
    if (header.size() > 6 && http::iequals(header.substr(0, 6), "basic ")) {
      std::string_view token = header.substr(6);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      auto decoded = base64_decode(token);
      std::size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        reason = "malformed Basic credentials (expected base64 of user:password)";
      } else {
        std::string_view pair = *decoded;
        user = keep->check(pair.substr(0, colon), pair.substr(colon + 1));
        reason = "wrong user name or password";
      }
    }
    if (!user) {
      c.set_header("WWW-Authenticate", keep->challenge);
      c.set_header("Content-Type", "text/plain; charset=utf-8");
      co_await http::send_error(c, 401, http::error_line(401, reason));
      co_return;
    }
    c.assign<AuthenticatedUser>().name = std::move(*user);
    co_await next(c);
  };
}

}  // namespace atl::web
