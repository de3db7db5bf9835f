#pragma once

// A worker's io_uring (Linux 6.1+: SINGLE_ISSUER | DEFER_TASKRUN, multishot receives into a ring
// of provided buffers). Connections receive and send through it, so one io_uring_enter per loop
// turn hands the kernel every send queued during the turn and collects every byte that arrived,
// instead of a recv and a send syscall per socket and an epoll_wait per turn.
//
// Raw syscalls (no liburing: not needed for the handful of operations used here). Single-threaded:
// only the thread that opened the ring may use it (the kernel enforces it: SINGLE_ISSUER).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct io_uring_sqe;

namespace sluice::event {

// An operation's user_data points at one of these; the ring calls complete() for each of its
// completions (several for a multishot operation; IORING_CQE_F_MORE in flags while more follow).
struct RingOp {
  void (*complete)(RingOp* op, int32_t res, uint32_t flags) = nullptr;
};

class Ring {
public:
  static constexpr uint32_t kBufferSize = 16384; // a provided receive buffer
  static constexpr uint32_t kBuffers = 256;      // 4 MiB of address space, touched as used
  static constexpr uint32_t kCqMore = 1U << 1;   // IORING_CQE_F_MORE
  static constexpr uint32_t kCqBuffer = 1U << 0; // IORING_CQE_F_BUFFER

  // The ring, or nullptr with `why` set when the kernel cannot run it (io_uring disabled by
  // sysctl or seccomp, a kernel before 6.1, RLIMIT_MEMLOCK).
  static std::unique_ptr<Ring> open(std::string& why);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Queue operations; they reach the kernel with the next submitAndWait() (or earlier when the
  // submission queue is full). Each counts as live until its last completion.
  void recvMultishot(int fd, RingOp* op); // into the provided buffers
  void send(int fd, const void* p, size_t n, RingOp* op);
  void poll(int fd, RingOp* op); // one POLLIN readiness (at once if ready now)
  // Cancels the operations of `op` / every operation on `fd` / every operation. Their final
  // completions carry -ECANCELED (or the result they had reached).
  void cancel(RingOp* op);
  void cancelFd(int fd);
  void cancelAll();

  // Submits what is queued and waits for at least one completion, at most timeout_ms
  // (-1: no limit, 0: do not wait). With min_wait_us (kernels with minWait()), the wait goes on
  // for up to `want` completions until min_wait_us have passed, then ends with what is there.
  void submitAndWait(int64_t timeout_ms, unsigned want = 1, unsigned min_wait_us = 0);
  // Waits take a min-wait: the kernel has one (IORING_FEAT_MIN_TIMEOUT, Linux 6.12+) and a short
  // kernel timer is cheap here (minWaitPays(shortTimerCostNs())).
  bool minWait() const { return min_wait_; }
  bool kernelMinWait() const { return kernel_min_wait_; }
  // How long a wait with a min-wait (minWait()) goes on for more completions.
  static constexpr unsigned kMinWaitUs = 20;
  // What arming a kernel timer that expires kMinWaitUs out and cancelling it costs the calling
  // thread, beyond doing the same with one 10 s out: the price of reprogramming the CPU's timer
  // twice. A min-wait pays it on every wait it is used for. Measured once per process (the
  // first call: ~3 ms under a hypervisor that traps the timer, well under 1 ms elsewhere);
  // later calls return it.
  static int64_t shortTimerCostNs();
  // A min-wait saves wake-ups (each one a context switch, 2-5 µs); it is used only where the
  // timer it arms costs less than that.
  static bool minWaitPays(int64_t short_timer_cost_ns) {
    return short_timer_cost_ns < kMinWaitTimerBudgetNs;
  }
  static constexpr int64_t kMinWaitTimerBudgetNs = 2000;
  // Runs complete() for every completion there; returns how many there were.
  unsigned reap();
  // Operations queued or running whose last completion has not come yet.
  size_t live() const { return live_; }

  // The bytes of a completion that carried IORING_CQE_F_BUFFER; recycle() gives the buffer back
  // to the kernel once they are consumed.
  static uint16_t bufferId(uint32_t flags) { return static_cast<uint16_t>(flags >> 16); }
  const char* buffer(uint16_t bid) const { return buffers_ + size_t{bid} * kBufferSize; }
  void recycle(uint16_t bid);

private:
  Ring() = default;
  io_uring_sqe* sqe();

  int fd_ = -1;
  void* rings_ = nullptr;
  size_t rings_len_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_len_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_local_tail_ = 0; // queued up to here; published to *sq_tail_ before entering
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  void* cqes_ = nullptr;
  // Provided buffers: the ring the kernel takes them from, and their memory.
  void* buf_ring_ = nullptr;
  char* buffers_ = nullptr;
  uint16_t buf_tail_ = 0;
  size_t live_ = 0;
  bool kernel_min_wait_ = false;
  bool min_wait_ = false;
};

} // namespace sluice::event
