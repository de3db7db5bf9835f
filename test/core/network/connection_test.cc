// core/network: Connection on real loopback sockets, with each way of moving bytes (io_uring where
// this kernel allows it, and epoll): large transfers in order, bytes that arrive while reading is
// disabled, and closing while the kernel still holds a send.

#include "core/event/dispatcher.h"
#include "core/network/connection.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace sluice::network {
namespace {

using event::Dispatcher;
using event::IoBackend;

std::vector<IoBackend> backends() {
  std::vector<IoBackend> out{IoBackend::Epoll};
  std::string why;
  if (event::Ring::open(why) != nullptr) {
    out.push_back(IoBackend::IoUring);
  } else {
    WARN("io_uring unavailable here (" << why << "): only the epoll path is tested");
  }
  return out;
}

const char* name(IoBackend b) {
  return b == IoBackend::Epoll ? "epoll" : "io_uring";
}

// Sets the process-wide backend for the dispatchers created in a section; back to Auto after.
struct BackendScope {
  explicit BackendScope(IoBackend b) { Dispatcher::setIoBackend(b); }
  ~BackendScope() { Dispatcher::setIoBackend(IoBackend::Auto); }
};

struct Recorder : ConnectionCallbacks {
  Connection* conn = nullptr;
  std::string got;
  int remote_close = 1; // 1: not yet
  int connected = 1;
  std::function<void()> on_data;
  void onData() override {
    Buffer& in = conn->readBuffer();
    got.append(in.readPtr(), in.readable());
    in.drain(in.readable());
    if (on_data) {
      on_data();
    }
  }
  void onRemoteClose(int err) override { remote_close = err; }
  void onConnected(int status) override { connected = status; }
};

// Runs the loop until pred() holds (true) or 10 s pass (false).
bool runUntil(Dispatcher& d, const std::function<bool()>& pred) {
  auto tick = d.createTimer([] {});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    tick->enable(5); // bounds each wait
    d.runOnce();
  }
  return true;
}

// A listening socket on 127.0.0.1 and its address.
struct Listener {
  int fd = -1;
  SockAddr addr;
  Listener() {
    SockAddr any;
    auto* sin = reinterpret_cast<sockaddr_in*>(&any.storage);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    any.len = sizeof(sockaddr_in);
    fd = openListenSocket(any, 16);
    REQUIRE(fd >= 0);
    REQUIRE(boundAddress(fd, addr));
  }
  ~Listener() { ::close(fd); }
  // A connected raw socket (blocking accept: the client connected already).
  int acceptOne() const {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(c >= 0);
    return c;
  }
};

// Connects `conn` to `l` and starts reading; returns the accepted end (a raw socket).
int connectTo(Dispatcher& d, const Listener& l, Connection& conn, Recorder& cb) {
  cb.conn = &conn;
  REQUIRE(conn.connect(l.addr) == 0);
  REQUIRE(runUntil(d, [&] { return cb.connected != 1; }));
  REQUIRE(cb.connected == 0);
  conn.readEnable(true);
  return l.acceptOne();
}

// Takes over the accepted end of connectTo() in `conn` and starts reading.
void adoptPeer(int fd, Connection& conn, Recorder& cb) {
  cb.conn = &conn;
  REQUIRE(conn.adopt(fd) == 0);
  conn.readEnable(true);
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) {
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return s;
}

// Reads whatever is there without blocking; returns false at EOF or on an error (errno set).
bool drainRaw(int fd, std::string& into) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      errno = 0;
      return false;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

TEST_CASE("Connection: 4 MiB cross both ways in order, in pieces of every size", "[network]") {
  for (IoBackend b : backends()) {
    INFO(name(b));
    BackendScope scope(b);
    Dispatcher d;
    Listener l;
    Recorder client_cb;
    Recorder server_cb;
    Connection client(d, client_cb);
    Connection server(d, server_cb);
    adoptPeer(connectTo(d, l, client, client_cb), server, server_cb);
    const std::string up = pattern(4 << 20);
    const std::string down = pattern((4 << 20) + 17).substr(17);
    // Queued in pieces of growing size across loop turns, so sends overlap the ones in flight.
    size_t sent_up = 0;
    size_t sent_down = 0;
    size_t piece = 1;
    REQUIRE(runUntil(d, [&] {
      if (sent_up < up.size() && !client.aboveHighWatermark()) {
        size_t n = std::min(piece, up.size() - sent_up);
        client.writeBuffer().append(up.data() + sent_up, n);
        client.flush();
        sent_up += n;
      }
      if (sent_down < down.size() && !server.aboveHighWatermark()) {
        size_t n = std::min(piece, down.size() - sent_down);
        server.writeBuffer().append(down.data() + sent_down, n);
        server.flush();
        sent_down += n;
      }
      piece = piece * 3 + 1;
      if (piece > 300000) {
        piece = 1;
      }
      return server_cb.got.size() >= up.size() && client_cb.got.size() >= down.size();
    }));
    CHECK(server_cb.got == up);
    CHECK(client_cb.got == down);
    // The client closes; the server sees the end.
    client.close();
    REQUIRE(runUntil(d, [&] { return server_cb.remote_close != 1; }));
    CHECK(server_cb.remote_close == 0);
    server.close();
    d.closeAll();
  }
}

TEST_CASE("Connection: bytes that arrive while reading is disabled come after, in order",
          "[network]") {
  for (IoBackend b : backends()) {
    INFO(name(b));
    BackendScope scope(b);
    Dispatcher d;
    Listener l;
    Recorder cb;
    Connection conn(d, cb);
    int peer = connectTo(d, l, conn, cb);
    // The first bytes disable reading from inside onData, as a proxy does when its other side
    // is full.
    cb.on_data = [&] { conn.readEnable(false); };
    REQUIRE(::send(peer, "first|", 6, 0) == 6);
    REQUIRE(runUntil(d, [&] { return !cb.got.empty(); }));
    cb.on_data = nullptr;
    // All at once while disabled: the whole lot may arrive before reading stops.
    std::string rest;
    for (int i = 0; i < 50; i++) {
      rest += "burst" + std::to_string(i) + "|";
    }
    REQUIRE(::send(peer, rest.data(), rest.size(), 0) == static_cast<ssize_t>(rest.size()));
    int turns = 0;
    runUntil(d, [&] { return ++turns > 10; });
    CHECK(cb.got == "first|"); // nothing delivered while disabled
    cb.on_data = [&] { conn.readEnable(false); };
    conn.readEnable(true);
    REQUIRE(runUntil(d, [&] { return cb.got.size() >= 6 + rest.size(); }));
    CHECK(cb.got == "first|" + rest);
    cb.on_data = nullptr;
    // In pieces across loop turns while disabled: some arrive, some wait in the kernel.
    std::string more;
    for (int i = 0; i < 50; i++) {
      std::string part = "part" + std::to_string(i) + "|";
      more += part;
      REQUIRE(::send(peer, part.data(), part.size(), 0) == static_cast<ssize_t>(part.size()));
      turns = 0;
      runUntil(d, [&] { return ++turns > 2; });
    }
    CHECK(cb.got == "first|" + rest);
    conn.readEnable(true);
    rest += more;
    REQUIRE(runUntil(d, [&] { return cb.got.size() >= 6 + rest.size(); }));
    CHECK(cb.got == "first|" + rest);
    // Reading goes on normally afterwards.
    REQUIRE(::send(peer, "last", 4, 0) == 4);
    REQUIRE(runUntil(d, [&] { return cb.got.size() >= 10 + rest.size(); }));
    CHECK(cb.got == "first|" + rest + "last");
    // The last bytes and the end arrive while reading is disabled: both come once it is enabled,
    // the bytes first.
    conn.readEnable(false);
    REQUIRE(::send(peer, "tail", 4, 0) == 4);
    ::close(peer);
    turns = 0;
    runUntil(d, [&] { return ++turns > 10; });
    CHECK(cb.remote_close == 1);
    std::string got_at_end;
    cb.on_data = [&] { got_at_end = cb.got; };
    conn.readEnable(true);
    REQUIRE(runUntil(d, [&] { return cb.remote_close != 1; }));
    CHECK(cb.remote_close == 0);
    CHECK(cb.got == "first|" + rest + "lasttail");
    CHECK(got_at_end == cb.got); // delivered before the end was reported
    conn.close();
    d.closeAll();
  }
}

TEST_CASE("Connection: closing while a send waits on a peer that does not read", "[network]") {
  for (bool reset : {false, true}) {
    for (IoBackend b : backends()) {
      INFO(name(b) << (reset ? " reset" : " close"));
      BackendScope scope(b);
      Dispatcher d;
      Listener l;
      Recorder cb;
      auto conn = std::make_unique<Connection>(d, cb);
      int peer = connectTo(d, l, *conn, cb);
      // Far more than the socket buffers hold: the send stays in the kernel's hands.
      const std::string big = pattern(16 << 20);
      conn->writeBuffer().append(big);
      conn->flush();
      int turns = 0;
      runUntil(d, [&] { return ++turns > 20; });
      REQUIRE(conn->pendingBytes() > 0);
      conn->close(reset);
      conn.reset(); // the owner goes at once; the box waits for the kernel
      d.closeAll();
      // The peer gets a prefix of what was sent, then the end (FIN), or a reset.
      std::string got;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      bool open = true;
      int err = 0;
      while (open && std::chrono::steady_clock::now() < deadline) {
        pollfd p{peer, POLLIN, 0};
        ::poll(&p, 1, 100);
        open = drainRaw(peer, got);
        err = errno;
      }
      CHECK_FALSE(open);
      CHECK(got.size() < big.size());
      CHECK(got == big.substr(0, got.size()));
      if (reset) {
        CHECK(err == ECONNRESET);
      } else {
        CHECK(err == 0);
      }
      ::close(peer);
    }
  }
}

TEST_CASE("Connection: more connections receive at once than the ring has buffers", "[network]") {
  // 1,100 connections with 40 KiB each already waiting when the loop first runs: their
  // receives fill the submission queue (1,024 entries) before the first turn, and need ~3,300
  // provided buffers where a ring has 256, so most end with "no buffers" and must be armed
  // again; every byte still arrives, in order, on its own connection, then the end. (Fewer
  // connections where the descriptor limit cannot be raised: still ~3 times the buffers.)
  constexpr size_t kWanted = 1100;
  constexpr size_t kBytes = 40 << 10;
  rlimit nofile{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &nofile) == 0);
  if (nofile.rlim_cur < kWanted + 64 && nofile.rlim_max > nofile.rlim_cur) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, kWanted + 64);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &nofile) == 0);
  }
  const size_t count = std::min<size_t>(kWanted, nofile.rlim_cur - 64);
  REQUIRE(count >= 300);
  INFO(count << " connections");
  for (IoBackend b : backends()) {
    INFO(name(b));
    BackendScope scope(b);
    Dispatcher d;
    Listener l;
    std::vector<std::unique_ptr<Recorder>> cbs;
    std::vector<std::unique_ptr<Connection>> conns;
    std::vector<std::string> sent;
    for (size_t i = 0; i < count; i++) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      REQUIRE(c >= 0);
      REQUIRE(::connect(c, l.addr.get(), l.addr.len) == 0);
      timeval limit{5, 0}; // a send the kernel cannot take fails the test instead of hanging it
      REQUIRE(::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)) == 0);
      cbs.push_back(std::make_unique<Recorder>());
      conns.push_back(std::make_unique<Connection>(d, *cbs.back()));
      adoptPeer(l.acceptOne(), *conns.back(), *cbs.back());
      sent.push_back(pattern(kBytes + i).substr(i));
      REQUIRE(::send(c, sent.back().data(), kBytes, MSG_NOSIGNAL) == static_cast<ssize_t>(kBytes));
      ::close(c); // FIN after the bytes
    }
    REQUIRE(runUntil(d, [&] {
      for (const auto& cb : cbs) {
        if (cb->remote_close == 1) {
          return false;
        }
      }
      return true;
    }));
    for (size_t i = 0; i < count; i++) {
      INFO("connection " << i);
      CHECK(cbs[i]->remote_close == 0);
      CHECK(cbs[i]->got.size() == kBytes);
      CHECK(cbs[i]->got == sent[i]);
    }
    for (auto& c : conns) {
      c->close();
    }
    d.closeAll();
  }
}

TEST_CASE("Connection: requests awaiting their reply are counted until it comes or they close; "
          "answers for the wait that sends them",
          "[network]") {
  std::string why;
  if (event::Ring::open(why) == nullptr) {
    WARN("io_uring unavailable here (" << why << "): nothing to count");
    return;
  }
  BackendScope scope(IoBackend::IoUring);
  Dispatcher d;
  Listener l;
  Recorder a_cb;
  Recorder b_cb;
  Connection a(d, a_cb); // outgoing: what it sends is answered
  Connection b(d, b_cb); // accepted: what it sends answers
  adoptPeer(connectTo(d, l, a, a_cb), b, b_cb);
  for (int i = 0; i < 3; i++) {
    a.writeBuffer().append("request");
    a.flush();
    CHECK(d.repliesDue() == 1);
    REQUIRE(runUntil(d, [&] { return b_cb.got.size() == 7U * (i + 1); }));
    CHECK(d.repliesDue() == 1);    // sent, not answered yet
    CHECK(d.answersQueued() == 0); // a request is not an answer
    b.writeBuffer().append("reply");
    b.flush();
    CHECK(d.answersQueued() == 1); // the wait that submits it expects the next request
    REQUIRE(runUntil(d, [&] { return a_cb.got.size() == 5U * (i + 1); }));
    CHECK(d.repliesDue() == 0);
    CHECK(d.answersQueued() == 0); // counted for one wait only
  }
  // Closed while its reply is due: no longer counted.
  a.writeBuffer().append("request");
  a.flush();
  CHECK(d.repliesDue() == 1);
  a.close();
  CHECK(d.repliesDue() == 0);
  b.close();
  d.closeAll();
}

} // namespace
} // namespace sluice::network
