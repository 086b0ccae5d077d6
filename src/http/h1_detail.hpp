#pragma once
// What the HTTP/1.1 connection's files share (h1_connection.cpp: the
// connection loop; h1_parser.cpp: the head and the body through llhttp;
// h1_writer.cpp: responses on the wire).
#include "http/h1_connection.hpp"

#include <charconv>
#include <cstdint>
#include <string_view>

namespace atl::http::h1 {

inline constexpr std::string_view bare_lf =
    "a line of the request head ends in a bare LF (CRLF is required)";
inline constexpr std::size_t cap = net::Buffer::capacity;
// A response head must fit one output buffer; bigger header sets are refused
// with a 500 rather than sent in pieces.
inline constexpr std::size_t head_overhead = 160;
// Files up to this size are read into the output buffer (pread) so their
// bytes leave with the head in one write, pipelined answers too; larger ones
// go by sendfile.
inline constexpr std::size_t inline_file_limit = 16 * 1024;
// Lingering close: how long a closing connection keeps reading (and
// discarding) what the client still sends. Long enough for an upload refused
// with 413 to see its answer; short enough that a closing client holds its
// slot only briefly.
inline constexpr std::int64_t linger_ms = 2'000;

inline char* put_uint(char* p, std::uint64_t v) { return std::to_chars(p, p + 20, v).ptr; }

/// What is wrong with the chunked framing at the start of a body (as much
/// as has arrived), or nullptr if nothing is wrong yet (h1_parser.cpp).
const char* chunked_framing_error(std::string_view body) noexcept;

/// Logs a request the parser refused, rate-limited (h1_connection.cpp).
void log_refused(const net::PeerAddress& peer, int status, std::string_view reason);

}  // namespace atl::http::h1
