#include "core/network/socket.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <string>

namespace sluice::network {

TEST_CASE("formatAddressTo writes what formatAddress returns, without allocating", "[socket]") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(19111);
  inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(65535);
  inet_pton(AF_INET6, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", &v6.sin6_addr);
  char out[kMaxAddressText];
  for (const sockaddr* sa : {reinterpret_cast<const sockaddr*>(&v4), reinterpret_cast<const sockaddr*>(&v6)}) {
    std::string want = formatAddress(sa);
    size_t n = formatAddressTo(sa, out, sizeof(out));
    CHECK(std::string(out, n) == want);
    CHECK(out[n] == '\0');
    CHECK(formatAddressTo(sa, out, want.size()) == 0); // no room for the NUL: refused
    CHECK(formatAddressTo(sa, out, want.size() + 1) == want.size());
  }
  CHECK(std::string(out) == "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  CHECK(formatAddressTo(&unix_like, out, sizeof(out)) == 0);
}

} // namespace sluice::network
