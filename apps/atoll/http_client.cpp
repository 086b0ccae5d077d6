#include "http_client.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace atl::app {

HttpResponse http_request(const std::string& method, const std::string& url,
                          const std::string& token, const std::string& content_type,
                          const std::string& body) {
  if (url.rfind("http://", 0) != 0)
    throw std::runtime_error("'" + url + "': only http:// URLs are supported");
  std::string rest = url.substr(7);
  std::string hostport = rest.substr(0, rest.find('/'));
  std::string path = rest.find('/') == std::string::npos ? "/" : rest.substr(rest.find('/'));
  std::string host = hostport, port = "80";
  if (auto colon = hostport.rfind(':');
      colon != std::string::npos && hostport.find(']', colon) == std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
    throw std::runtime_error("cannot resolve '" + host + "' in " + url);
  int fd = -1;
  for (auto* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw std::runtime_error("cannot connect to " + hostport + " (" + url +
                             "): " + std::strerror(errno));
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: " + hostport + "\r\nConnection: close\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  std::size_t off = 0;
  while (off < req.size()) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("connection to " + hostport + " failed while sending");
    }
    off += std::size_t(n);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, std::size_t(n));
  }
  ::close(fd);
  HttpResponse r;
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12)
    throw std::runtime_error("no HTTP response from " + url);
  r.status = std::atoi(resp.c_str() + 9);
  auto head_end = resp.find("\r\n\r\n");
  std::string head = resp.substr(0, head_end);
  std::string payload = head_end == std::string::npos ? "" : resp.substr(head_end + 4);
  std::string lower = head;
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string decoded;
    std::size_t p = 0;
    while (p < payload.size()) {
      std::size_t eol = payload.find("\r\n", p);
      if (eol == std::string::npos) break;
      std::size_t len = std::strtoul(payload.substr(p, eol - p).c_str(), nullptr, 16);
      if (len == 0) break;
      decoded += payload.substr(eol + 2, len);
      p = eol + 2 + len + 2;
    }
    payload = decoded;
  }
  r.body = payload;
  return r;
}

}  // namespace atl::app
