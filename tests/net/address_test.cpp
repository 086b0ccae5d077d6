// Endpoint and PeerAddress: parsing, printing, and the errors users see.
#include <atoll/net/address.hpp>

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using atl::net::Endpoint;
using atl::net::PeerAddress;

TEST(Endpoint, ParsesTheDocumentedForms) {
  EXPECT_EQ(Endpoint::parse("127.0.0.1:8080").to_string(), "127.0.0.1:8080");
  EXPECT_EQ(Endpoint::parse("[::1]:8080").to_string(), "[::1]:8080");
  EXPECT_EQ(Endpoint::parse("0.0.0.0:0").port(), 0);
  Endpoint any = Endpoint::parse(":8080");
  EXPECT_EQ(any.family(), AF_INET);
  EXPECT_EQ(any.host(), "0.0.0.0");
  EXPECT_EQ(any.port(), 8080);
  EXPECT_EQ(Endpoint::parse("localhost:443").to_string(), "127.0.0.1:443");
  Endpoint u = Endpoint::parse("unix:/run/atoll.sock");
  EXPECT_TRUE(u.is_unix());
  EXPECT_EQ(u.to_string(), "unix:/run/atoll.sock");
  EXPECT_EQ(u.host(), "/run/atoll.sock");
  EXPECT_EQ(u.port(), 0);
}

TEST(Endpoint, ErrorsQuoteTheTextAndSayWhatWasExpected) {
  auto message = [](const char* text) {
    try {
      Endpoint::parse(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
                          "127.0.0.1:-1", "example.com:80", "[::1]", "unix:"}) {
    std::string m = message(bad);
    EXPECT_NE(m, "(no error)") << "'" << bad << "' was accepted";
    if (std::string(bad) != "unix:") {
      EXPECT_NE(m.find(bad), std::string::npos) << m;
    }
  }
  EXPECT_NE(message("127.0.0.1").find("ADDR:PORT"), std::string::npos);
  EXPECT_NE(message("1.2.3.4:99999").find("0 to 65535"), std::string::npos);
  std::string too_long = "unix:/" + std::string(200, 'x');
  EXPECT_NE(message(too_long.c_str()), "(no error)");
}

TEST(Endpoint, PortCanBeChanged) {
  Endpoint e = Endpoint::ip("::1", 1);
  e.set_port(9000);
  EXPECT_EQ(e.to_string(), "[::1]:9000");
  Endpoint v4 = Endpoint::ip("10.0.0.1", 1);
  v4.set_port(65535);
  EXPECT_EQ(v4.port(), 65535);
}

TEST(Endpoint, RoundTripsThroughSockaddr) {
  for (const char* text : {"192.168.1.20:5000", "[fe80::1]:7", "unix:/tmp/x.sock"}) {
    Endpoint e = Endpoint::parse(text);
    Endpoint back = Endpoint::from_sockaddr(e.data(), e.size());
    EXPECT_EQ(back.to_string(), text);
    EXPECT_EQ(back.size(), e.size());
  }
}

TEST(PeerAddress, PrintsIpPeersAndNamesUnixOnes) {
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = htons(5555);
  inet_pton(AF_INET, "10.1.2.3", &in4.sin_addr);
  PeerAddress p4;
  p4.assign(reinterpret_cast<sockaddr*>(&in4), sizeof in4);
  EXPECT_EQ(p4.to_string(), "10.1.2.3:5555");
  EXPECT_EQ(p4.host(), "10.1.2.3");
  EXPECT_EQ(p4.port(), 5555);

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(80);
  inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
  PeerAddress p6;
  p6.assign(reinterpret_cast<sockaddr*>(&in6), sizeof in6);
  EXPECT_EQ(p6.to_string(), "[2001:db8::5]:80");

  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  PeerAddress pu;
  pu.assign(reinterpret_cast<sockaddr*>(&un), sizeof(sa_family_t));
  EXPECT_EQ(pu.family(), AF_UNIX);
  EXPECT_EQ(pu.to_string(), "unix");
  EXPECT_EQ(pu.port(), 0);

  PeerAddress none;
  EXPECT_EQ(none.family(), AF_UNSPEC);
}
