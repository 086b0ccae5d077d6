#pragma once
// HTTP Basic authentication (RFC 7617).
//
// A request without valid credentials gets 401 with
// `WWW-Authenticate: Basic realm="…", charset="UTF-8"` and goes no further;
// one with valid credentials goes on, its user name in
// `conn.assign<AuthenticatedUser>()`. Credentials are compared as SHA-256
// digests with CRYPTO_memcmp, against every configured user every time: the
// time taken says neither how much of a password was right nor whether the
// user exists. Basic sends the password with every request: use it over
// HTTPS only, and put a rate limit in front against guessing.
//
// | option | default      | why                                                       |
// |--------|--------------|-----------------------------------------------------------|
// | realm  | "restricted" | names the protected space in the browser's prompt; users  |
// |        |              | with the same realm share remembered credentials          |
// | users  | {}           | user → password; hashed at start, compared in constant time|
// | verify | none         | a check of your own instead (a password-hash store); it   |
// |        |              | must do its own constant-time comparison                  |
//
// With neither users nor verify, basic_auth() throws: a gate that no one
// can pass is a mistake, not a policy. Behind cors(), so preflights (which
// never carry credentials) are answered before the gate.
#include <atoll/web/pipeline.hpp>

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace atl::web {

/// Who passed the gate; in `conn.assign<AuthenticatedUser>()`.
struct AuthenticatedUser {
  std::string name;
};

struct BasicAuthOptions {
  std::string realm = "restricted";
  std::map<std::string, std::string> users;
  std::function<bool(std::string_view user, std::string_view password)> verify;
};

/// The gate. Throws std::invalid_argument on no users and no verify, or a
/// realm holding control characters.
Middleware basic_auth(BasicAuthOptions options);

}  // namespace atl::web
