// TLS: echo through OpenSSL on both ends, ALPN selection, SNI certificate
// choice, and the handshake timeout.
#include <atoll/net/server.hpp>
#include <atoll/net/tls.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "net/handlers.hpp"
#include "support/test_support.hpp"
#include "support/tls_client.hpp"

using namespace atl::test;
using atl::net::ServerOptions;
using atl::net::TlsOptions;

namespace {

TlsOptions test_tls() {
  TlsOptions t;
  t.cert_file = cert_dir() + "/cert.pem";
  t.key_file = cert_dir() + "/key.pem";
  t.alpn = {"h2", "http/1.1"};
  t.hosts = {{"other.test", cert_dir() + "/other.pem", cert_dir() + "/other-key.pem"}};
  return t;
}

// Says what the server saw of the handshake in one line, then echoes.
atl::Task<> describe_then_echo(atl::net::Socket& s) {
  std::string line = "tls=" + std::to_string(s.is_tls()) + " alpn=" + std::string(s.alpn()) +
                     " sni=" + std::string(s.server_name()) + "\n";
  if (!co_await s.write(std::string_view(line))) co_return;
  co_await echo_handler(s);
}

std::string expected_line(const std::string& alpn, const std::string& sni) {
  return "tls=1 alpn=" + alpn + " sni=" + sni + "\n";
}

}  // namespace

TEST(Tls, EchoesThroughTheTlsLayer) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  TlsClient c;
  ASSERT_TRUE(c.connect(server->port(), "localhost", {"http/1.1"})) << c.error();
  std::string line = expected_line("http/1.1", "localhost");
  EXPECT_EQ(c.recv(line.size()), line);
  ASSERT_TRUE(c.send("secret"));
  EXPECT_EQ(c.recv(6), "secret");
  // Several TLS records each way, with the writer on another thread.
  std::string big(300'000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + 3);
  std::thread sender([&] { c.send(big); });
  std::string back = c.recv(big.size());
  sender.join();
  EXPECT_TRUE(back == big) << "got " << back.size() << " of " << big.size() << " bytes back";
}

TEST(Tls, AlpnFollowsTheServersPreference) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  struct Case {
    std::vector<std::string> offered;
    std::string chosen;
  };
  for (const Case& k : std::vector<Case>{{{"h2", "http/1.1"}, "h2"},
                                         {{"http/1.1"}, "http/1.1"},
                                         {{"http/1.1", "h2"}, "h2"},  // server order wins
                                         {{"h2"}, "h2"},
                                         {{"spdy/3"}, ""},  // no overlap: no ALPN
                                         {{}, ""}}) {
    TlsClient c;
    ASSERT_TRUE(c.connect(server->port(), "localhost", k.offered)) << c.error();
    EXPECT_EQ(c.alpn(), k.chosen);
    std::string line = expected_line(k.chosen, "localhost");
    EXPECT_EQ(c.recv(line.size()), line) << "offered " << k.offered.size() << " protocols";
  }
}

TEST(Tls, SniPicksTheHostsCertificate) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  struct Case {
    std::string sni, common_name;
  };
  for (const Case& k : std::vector<Case>{{"other.test", "other.test"},
                                         {"OTHER.Test", "other.test"},  // host names are case-blind
                                         {"localhost", "localhost"},
                                         {"unknown.test", "localhost"},  // the default
                                         {"", "localhost"}}) {
    TlsClient c;
    ASSERT_TRUE(c.connect(server->port(), k.sni, {"h2"})) << c.error();
    EXPECT_EQ(c.peer_common_name(), k.common_name) << "SNI '" << k.sni << "'";
    EXPECT_EQ(c.alpn(), "h2") << "SNI '" << k.sni << "': switching certificates lost ALPN";
    std::string line = expected_line("h2", k.sni);
    EXPECT_EQ(c.recv(line.size()), line);
    ASSERT_TRUE(c.send("ok"));
    EXPECT_EQ(c.recv(2), "ok");
  }
}

TEST(Tls, AClientThatSendsNothingIsClosedAtTheHandshakeTimeout) {
  TlsOptions tls = test_tls();
  tls.handshake_timeout_ms = 300;
  auto server = start_server({.tls = tls}, describe_then_echo);
  Stopwatch sw;  // before connecting: the server's deadline cannot start earlier
  UniqueFd silent(connect_tcp(server->port()));
  ASSERT_TRUE(silent);
  EXPECT_TRUE(wait_closed(silent.get(), 5000)) << "the silent client held its slot";
  EXPECT_GE(sw.elapsed_ms(), 250.0);
  EXPECT_LT(sw.elapsed_ms(), 3000.0);
  EXPECT_TRUE(wait_until([&] { return server->info().total() == 0; }));
}

TEST(Tls, AClientThatStallsMidHandshakeIsClosedAtTheHandshakeTimeout) {
  TlsOptions tls = test_tls();
  tls.handshake_timeout_ms = 300;
  auto server = start_server({.tls = tls}, describe_then_echo);
  UniqueFd slow(connect_tcp(server->port()));
  // The first bytes of a ClientHello record, then nothing.
  ASSERT_TRUE(send_all(slow.get(), std::string("\x16\x03\x01\x02\x00\x01", 6)));
  Stopwatch sw;
  EXPECT_TRUE(wait_closed(slow.get(), 5000));
  EXPECT_LT(sw.elapsed_ms(), 3000.0);
}

TEST(Tls, PlainTextOnTheTlsPortIsRejectedPromptly) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  UniqueFd plain(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(plain.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  Stopwatch sw;
  EXPECT_TRUE(wait_closed(plain.get(), 5000));
  EXPECT_LT(sw.elapsed_ms(), 2000.0);  // well before the 10 s handshake timeout
  // And a real client is still served afterwards.
  TlsClient c;
  ASSERT_TRUE(c.connect(server->port())) << c.error();
  std::string line = expected_line("", "localhost");
  EXPECT_EQ(c.recv(line.size()), line);
}

TEST(Tls, AMissingCertificateFileIsNamedInTheError) {
  TlsOptions tls = test_tls();
  tls.cert_file = cert_dir() + "/does-not-exist.pem";
  atl::net::Server server({.tls = tls}, describe_then_echo);
  try {
    server.start();
    ADD_FAILURE() << "started without a certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does-not-exist.pem"), std::string::npos) << e.what();
  }
}

TEST(Tls, ManyClientsHandshakeConcurrently) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  constexpr int n = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      TlsClient c;
      if (!c.connect(server->port(), i % 2 ? "other.test" : "localhost", {"h2", "http/1.1"}))
        return;
      std::string line = expected_line("h2", i % 2 ? "other.test" : "localhost");
      if (c.recv(line.size()) != line) return;
      std::string msg = "client " + std::to_string(i);
      if (!c.send(msg) || c.recv(msg.size()) != msg) return;
      if (c.peer_common_name() != (i % 2 ? "other.test" : "localhost")) return;
      ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), n);
}

TEST(Tls, SendfileGoesThroughTheTlsLayer) {
  // No kTLS: Socket::sendfile reads the file and encrypts it chunk by chunk.
  std::string dir = make_temp_dir();
  std::string path = dir + "/file.bin";
  std::string content(200'000, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = char(i * 13 + 5);
  {
    UniqueFd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_EQ(::write(f.get(), content.data(), content.size()), ssize_t(content.size()));
  }
  auto handler = [path](atl::net::Socket& s) -> atl::Task<> {
    UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto r = co_await s.sendfile(f.get(), 100, 150'000);
    std::string trailer = r ? "|ok" : "|error " + std::to_string(r.error);
    co_await s.write(std::string_view(trailer));
  };
  auto server = start_server({.tls = test_tls()}, handler);
  TlsClient c;
  ASSERT_TRUE(c.connect(server->port())) << c.error();
  std::string got = c.recv(150'000 + 3);
  EXPECT_TRUE(got == content.substr(100, 150'000) + "|ok") << "got " << got.size() << " bytes";
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(Tls, CertificatesWithoutANameServeTheNamesTheyCarry) {
  TlsOptions t = test_tls();
  t.hosts = {{"", cert_dir() + "/a.pem", cert_dir() + "/a-key.pem"},
             {"", cert_dir() + "/b.pem", cert_dir() + "/b-key.pem"}};
  auto server = start_server({.tls = t}, describe_then_echo);
  struct Case {
    std::string sni, common_name;
  };
  for (const Case& k : std::vector<Case>{{"a.sni.test", "a.sni.test"},
                                         {"b.sni.test", "*.b.sni.test"},
                                         {"www.b.sni.test", "*.b.sni.test"},
                                         {"WWW.B.SNI.TEST.", "*.b.sni.test"},
                                         {"x.www.b.sni.test", "localhost"},  // one label deep only
                                         {"c.sni.test", "localhost"}}) {
    TlsClient c;
    ASSERT_TRUE(c.connect(server->port(), k.sni)) << c.error();
    EXPECT_EQ(c.peer_common_name(), k.common_name) << "SNI '" << k.sni << "'";
  }
}

TEST(Tls, SetHostsChangesCertificatesWhileServing) {
  auto server = start_server({.tls = test_tls()}, describe_then_echo);
  atl::net::Server* raw = server.get();
  ASSERT_NE(raw->tls(), nullptr);
  auto cn_for = [&](const std::string& sni) {
    TlsClient c;
    EXPECT_TRUE(c.connect(server->port(), sni)) << c.error();
    return c.peer_common_name();
  };
  EXPECT_EQ(cn_for("a.sni.test"), "localhost");
  EXPECT_EQ(cn_for("other.test"), "other.test");
  raw->tls()->set_hosts({{"", cert_dir() + "/a.pem", cert_dir() + "/a-key.pem"}});
  EXPECT_EQ(cn_for("a.sni.test"), "a.sni.test");
  EXPECT_EQ(cn_for("other.test"), "localhost") << "the new set replaces the old one";
  // A bad set changes nothing.
  EXPECT_THROW(raw->tls()->set_hosts({{"", cert_dir() + "/b.pem", cert_dir() + "/a-key.pem"}}),
               std::runtime_error);
  EXPECT_EQ(cn_for("a.sni.test"), "a.sni.test");
}

TEST(Tls, CheckCertificateNamesWhatIsWrong) {
  EXPECT_EQ(atl::net::check_certificate(cert_dir() + "/b.pem", cert_dir() + "/b-key.pem"),
            (std::vector<std::string>{"b.sni.test", "*.b.sni.test"}));
  auto error = [](const std::string& cert, const std::string& key) {
    try {
      atl::net::check_certificate(cert_dir() + cert, cert_dir() + key);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("/expired.pem", "/expired-key.pem").find("expired on Jan  2 00:00:00 2020"),
            std::string::npos)
      << error("/expired.pem", "/expired-key.pem");
  EXPECT_NE(error("/a.pem", "/b-key.pem").find("b-key.pem"), std::string::npos);
  EXPECT_NE(error("/missing.pem", "/a-key.pem").find("missing.pem"), std::string::npos);
}
