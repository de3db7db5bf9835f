#pragma once

#include "core/config/config.h"

#include <string>

#include <netdb.h>
#include <sys/socket.h>

namespace sluice::network {

// Resolved socket address.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Fills `out` for an IP-literal address. Returns false for a hostname.
bool toSockAddr(const config::Address& a, SockAddr& out);
// The first address of a getaddrinfo result, with `port`.
void fromAddrinfo(const addrinfo* ai, uint16_t port, SockAddr& out);
// Resolves a hostname (blocking getaddrinfo: call only off the data path).
bool resolve(const std::string& host, uint16_t port, SockAddr& out, std::string& error);
// "ip:port" (IPv6 in brackets) and "ip".
std::string formatAddress(const sockaddr* sa, bool with_port = true);
// The same text written into out (NUL-terminated) without allocating; returns its length, or 0
// when it does not fit in out_len bytes (including the NUL) or the family is not IP.
size_t formatAddressTo(const sockaddr* sa, char* out, size_t out_len);
// Longest text formatAddressTo() writes: "[v6]:65535" and the NUL.
constexpr size_t kMaxAddressText = 46 + 2 + 6 + 1;
uint16_t portOf(const sockaddr* sa);

// Opens a listening socket with SO_REUSEADDR and SO_REUSEPORT. Returns fd or -errno.
int openListenSocket(const SockAddr& addr, int backlog);
// Address a bound socket actually got (port 0 resolved).
bool boundAddress(int fd, SockAddr& out);

} // namespace sluice::network
