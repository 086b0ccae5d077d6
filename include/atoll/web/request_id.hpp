#pragma once
// Request id: every request gets an id, carried into logs and error pages
// (Conn::request_id) and returned in the response header.
//
// | option          | default        | why                                                    |
// |-----------------|----------------|--------------------------------------------------------|
// | header          | "X-Request-Id" | the de-facto header proxies and tracers already use    |
// | trust_incoming  | true           | keeps one id across a proxy chain; an incoming id is   |
// |                 |                | used only if sane (1–128 of A–Z a–z 0–9 - _ . :), so a |
// |                 |                | client cannot inject text into logs                    |
#include <atoll/web/pipeline.hpp>

#include <string>

namespace atl::web {

struct RequestIdOptions {
  std::string header = "X-Request-Id";
  bool trust_incoming = true;
};

Middleware request_id(RequestIdOptions options = {});

/// A new id: 20 hex digits, unique within the process and unlikely to repeat
/// across processes (a random per-thread prefix and a counter).
std::string make_request_id();
/// The same, written into `out` (which keeps its capacity: no allocation
/// per request once a connection is warm).
void make_request_id(std::string& out);
/// True if `id` may be accepted from a client.
bool is_sane_request_id(std::string_view id) noexcept;

}  // namespace atl::web
