#include "core/network/socket.h"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

namespace sluice::network {

bool toSockAddr(const config::Address& a, SockAddr& out) {
  out = SockAddr{};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, a.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(a.port);
    out.len = sizeof(sockaddr_in);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    out.len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool resolve(const std::string& host, uint16_t port, SockAddr& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = fmt::format("cannot resolve \"{}\": {}", host, gai_strerror(rc));
    return false;
  }
  fromAddrinfo(res, port, out);
  freeaddrinfo(res);
  return true;
}

void fromAddrinfo(const addrinfo* ai, uint16_t port, SockAddr& out) {
  out = SockAddr{};
  std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
  out.len = ai->ai_addrlen;
  if (ai->ai_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&out.storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&out.storage)->sin6_port = htons(port);
  }
}

std::string formatAddress(const sockaddr* sa, bool with_port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    auto* in4 = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof(buf));
    return with_port ? fmt::format("{}:{}", buf, ntohs(in4->sin_port)) : std::string(buf);
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    return with_port ? fmt::format("[{}]:{}", buf, ntohs(in6->sin6_port)) : std::string(buf);
  }
  return "unknown";
}

size_t formatAddressTo(const sockaddr* sa, char* out, size_t out_len) {
  char host[INET6_ADDRSTRLEN] = {0};
  bool v6 = sa->sa_family == AF_INET6;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, host, sizeof(host));
  } else if (v6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, host, sizeof(host));
  } else {
    return 0;
  }
  auto r = v6 ? fmt::format_to_n(out, out_len, "[{}]:{}", host, portOf(sa))
              : fmt::format_to_n(out, out_len, "{}:{}", host, portOf(sa));
  if (r.size + 1 > out_len) {
    return 0;
  }
  out[r.size] = '\0';
  return r.size;
}

uint16_t portOf(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  }
  if (sa->sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  }
  return 0;
}

int openListenSocket(const SockAddr& addr, int backlog) {
  int fd = ::socket(addr.get()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.get()->sa_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd, addr.get(), addr.len) != 0 || ::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

bool boundAddress(int fd, SockAddr& out) {
  out = SockAddr{};
  out.len = sizeof(out.storage);
  return getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.len) == 0;
}

} // namespace sluice::network
