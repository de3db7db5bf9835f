// BM_Syscall_*: what a syscall costs on this machine, to judge how much batching syscalls could
// save per proxied request. A null syscall is the entry/exit price that io_uring-style batching
// removes; a loopback send + recv of a request-sized message is what stays (the TCP work itself).
// The receiving socket sits in an epoll set in the *_Epoll variant, as it does in every worker, so
// each send also runs the epoll wake-up callback (with no thread waiting: no context switch).
// BM_Syscall_TimerArmCancel/N arms a kernel timer N ns out and cancels it: 20000 (what an
// io_uring min-wait arms) reprograms the CPU's timer twice, 10 s out reprograms nothing; the
// difference is what sluice measures at boot to decide whether its waits take a min-wait.
#include <array>
#include <cerrno>
#include <vector>

#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace {

// A connected loopback TCP pair with TCP_NODELAY on both ends, as between a worker and a peer.
struct LoopbackPair {
  int client = -1;
  int server = -1;

  LoopbackPair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (listener >= 0)
        ::close(listener);
      return;
    }
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client >= 0 && ::connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
      server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    }
    ::close(listener);
    const int one = 1;
    for (const int fd : {client, server}) {
      if (fd >= 0)
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
  }
  ~LoopbackPair() {
    if (client >= 0)
      ::close(client);
    if (server >= 0)
      ::close(server);
  }
  LoopbackPair(const LoopbackPair&) = delete;
  LoopbackPair& operator=(const LoopbackPair&) = delete;
  bool ok() const { return client >= 0 && server >= 0; }
};

// Sends `size` bytes one way and reads them on the other end; false on any short transfer.
bool roundTrip(const LoopbackPair& pair, const char* out, char* in, size_t size) {
  if (::send(pair.client, out, size, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(size)) {
    return false;
  }
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::recv(pair.server, in + got, size - got, 0);
    if (n <= 0)
      return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

void BM_Syscall_Null(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(::syscall(SYS_getppid));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Syscall_Null);

void BM_Syscall_LoopbackSendRecv(benchmark::State& state) {
  LoopbackPair pair;
  const auto size = static_cast<size_t>(state.range(0));
  std::vector<char> out(size, 'x'), in(size);
  if (!pair.ok()) {
    state.SkipWithError("cannot open a loopback TCP pair");
    return;
  }
  for (auto _ : state) {
    if (!roundTrip(pair, out.data(), in.data(), size)) {
      state.SkipWithError("short send or recv");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}
BENCHMARK(BM_Syscall_LoopbackSendRecv)->Arg(16)->Arg(168)->Arg(4096);

void BM_Syscall_LoopbackSendRecv_Epoll(benchmark::State& state) {
  LoopbackPair pair;
  const auto size = static_cast<size_t>(state.range(0));
  std::vector<char> out(size, 'x'), in(size);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pair.server;
  if (!pair.ok() || ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, pair.server, &ev) != 0) {
    if (ep >= 0)
      ::close(ep);
    state.SkipWithError("cannot open a loopback TCP pair in an epoll set");
    return;
  }
  std::array<epoll_event, 4> ready{};
  for (auto _ : state) {
    if (::send(pair.client, out.data(), size, MSG_DONTWAIT | MSG_NOSIGNAL) !=
            static_cast<ssize_t>(size) ||
        ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 0) != 1 ||
        ::recv(pair.server, in.data(), size, 0) != static_cast<ssize_t>(size)) {
      state.SkipWithError("short send, recv or no readiness");
      break;
    }
  }
  ::close(ep);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Syscall_LoopbackSendRecv_Epoll)->Arg(168);

void BM_Syscall_TimerArmCancel(benchmark::State& state) {
  const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0) {
    state.SkipWithError("timerfd_create failed");
    return;
  }
  const int64_t ns = state.range(0);
  itimerspec arm{};
  arm.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
  arm.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
  const itimerspec disarm{};
  for (auto _ : state) {
    ::timerfd_settime(fd, 0, &arm, nullptr);
    ::timerfd_settime(fd, 0, &disarm, nullptr);
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Syscall_TimerArmCancel)->Arg(20000)->Arg(10000000000);

} // namespace
