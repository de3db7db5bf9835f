#include "core/event/ring.h"

#include "core/common/assert.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <linux/io_uring.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

namespace sluice::event {

namespace {

constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 16384;
constexpr uint16_t kBufferGroup = 0;
constexpr unsigned kFeatMinTimeout = 1U << 15; // IORING_FEAT_MIN_TIMEOUT (newer than 6.1's headers)

int enter(int fd, unsigned submit, unsigned wait_nr, unsigned flags, void* arg, size_t argsz) {
  int rc = static_cast<int>(syscall(__NR_io_uring_enter, fd, submit, wait_nr, flags, arg, argsz));
  // EEXIST: a thread other than the ring's owner entered it (SINGLE_ISSUER). A bug, and one
  // that would otherwise leave every operation of the loop unsubmitted.
  SLUICE_RELEASE_ASSERT(rc >= 0 || errno != EEXIST, "io_uring entered from a foreign thread");
  return rc;
}

// The provided-buffer ring's tail overlays the first entry's reserved field.
uint16_t* bufRingTail(void* ring) {
  return reinterpret_cast<uint16_t*>(static_cast<char*>(ring) + offsetof(io_uring_buf, resv));
}

int64_t threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The least CPU time, over a few tries, that `pairs` arm-and-cancel pairs of a timer expiring
// `expiry_ns` out take (the least: a try interrupted by something else only ever adds).
int64_t timerPairsNs(int fd, int64_t expiry_ns, int pairs) {
  itimerspec arm{};
  arm.it_value.tv_sec = static_cast<time_t>(expiry_ns / 1000000000);
  arm.it_value.tv_nsec = static_cast<long>(expiry_ns % 1000000000);
  const itimerspec disarm{};
  int64_t best = INT64_MAX;
  for (int attempt = 0; attempt < 5; attempt++) {
    const int64_t start = threadCpuNs();
    for (int i = 0; i < pairs; i++) {
      timerfd_settime(fd, 0, &arm, nullptr);
      timerfd_settime(fd, 0, &disarm, nullptr);
    }
    best = std::min(best, threadCpuNs() - start);
  }
  return best;
}

int64_t measureShortTimerCostNs() {
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0) {
    return 0; // no timerfd to measure with: assume a timer is cheap, as it is on most machines
  }
  constexpr int kPairs = 32;
  // A timer as far out as a min-wait is the earliest on the CPU, so arming and cancelling it
  // reprograms the CPU's timer device; one 10 s out is behind the scheduler tick and reprograms
  // nothing.
  const int64_t near = timerPairsNs(fd, int64_t{Ring::kMinWaitUs} * 1000, kPairs);
  const int64_t far = timerPairsNs(fd, 10000000000, kPairs);
  close(fd);
  return std::max<int64_t>(0, near - far) / kPairs;
}

} // namespace

int64_t Ring::shortTimerCostNs() {
  static const int64_t cost = measureShortTimerCostNs();
  return cost;
}

std::unique_ptr<Ring> Ring::open(std::string& why) {
  std::unique_ptr<Ring> r(new Ring);
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = kCqEntries;
  r->fd_ = static_cast<int>(syscall(__NR_io_uring_setup, kSqEntries, &params));
  if (r->fd_ < 0) {
    why = std::string("io_uring_setup: ") + std::strerror(errno);
    return nullptr;
  }
  const unsigned need = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
  if ((params.features & need) != need) {
    why = "io_uring lacks SINGLE_MMAP, NODROP or EXT_ARG";
    return nullptr;
  }
  r->kernel_min_wait_ = (params.features & kFeatMinTimeout) != 0;
  r->min_wait_ = r->kernel_min_wait_ && minWaitPays(shortTimerCostNs());
  size_t sq_len = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_len = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  r->rings_len_ = sq_len > cq_len ? sq_len : cq_len;
  void* rings = mmap(nullptr, r->rings_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     r->fd_, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) {
    why = std::string("mmap of the io_uring rings: ") + std::strerror(errno);
    return nullptr;
  }
  r->rings_ = rings;
  char* base = static_cast<char*>(rings);
  r->sq_head_ = reinterpret_cast<unsigned*>(base + params.sq_off.head);
  r->sq_tail_ = reinterpret_cast<unsigned*>(base + params.sq_off.tail);
  r->sq_array_ = reinterpret_cast<unsigned*>(base + params.sq_off.array);
  r->sq_mask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
  r->sq_local_tail_ = *r->sq_tail_;
  r->cq_head_ = reinterpret_cast<unsigned*>(base + params.cq_off.head);
  r->cq_tail_ = reinterpret_cast<unsigned*>(base + params.cq_off.tail);
  r->cq_mask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
  r->cqes_ = base + params.cq_off.cqes;
  r->sqes_len_ = params.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, r->sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    r->fd_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    why = std::string("mmap of the io_uring entries: ") + std::strerror(errno);
    return nullptr;
  }
  r->sqes_ = static_cast<io_uring_sqe*>(sqes);

  // Provided buffers: the kernel picks one when bytes arrive, so an idle connection holds none.
  void* br = mmap(nullptr, kBuffers * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* mem = mmap(nullptr, size_t{kBuffers} * kBufferSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (br == MAP_FAILED || mem == MAP_FAILED) {
    if (br != MAP_FAILED) {
      munmap(br, kBuffers * sizeof(io_uring_buf));
    }
    if (mem != MAP_FAILED) {
      munmap(mem, size_t{kBuffers} * kBufferSize);
    }
    why = "no memory for the receive buffers";
    return nullptr;
  }
  r->buf_ring_ = br;
  r->buffers_ = static_cast<char*>(mem);
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uintptr_t>(br);
  reg.ring_entries = kBuffers;
  reg.bgid = kBufferGroup;
  if (syscall(__NR_io_uring_register, r->fd_, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
    why = std::string("io_uring provided buffers: ") + std::strerror(errno);
    return nullptr;
  }
  for (uint32_t i = 0; i < kBuffers; i++) {
    r->recycle(static_cast<uint16_t>(i));
  }
  return r;
}

Ring::~Ring() {
  if (buf_ring_ != nullptr) {
    munmap(buf_ring_, kBuffers * sizeof(io_uring_buf));
  }
  if (buffers_ != nullptr) {
    munmap(buffers_, size_t{kBuffers} * kBufferSize);
  }
  if (sqes_ != nullptr) {
    munmap(sqes_, sqes_len_);
  }
  if (rings_ != nullptr) {
    munmap(rings_, rings_len_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

io_uring_sqe* Ring::sqe() {
  for (;;) {
    unsigned head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
    if (sq_local_tail_ - head <= sq_mask_) {
      unsigned idx = sq_local_tail_ & sq_mask_;
      sq_array_[idx] = idx;
      sq_local_tail_++;
      io_uring_sqe* s = &sqes_[idx];
      std::memset(s, 0, sizeof(*s));
      return s;
    }
    // The submission queue is full: hand it to the kernel first.
    __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
    enter(fd_, sq_local_tail_ - head, 0, 0, nullptr, 0);
  }
}

void Ring::recvMultishot(int fd, RingOp* op) {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_RECV;
  s->fd = fd;
  s->ioprio = IORING_RECV_MULTISHOT;
  s->flags = IOSQE_BUFFER_SELECT;
  s->buf_group = kBufferGroup;
  s->user_data = reinterpret_cast<uintptr_t>(op);
  live_++;
}

void Ring::send(int fd, const void* p, size_t n, RingOp* op) {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_SEND;
  s->fd = fd;
  s->addr = reinterpret_cast<uintptr_t>(p);
  s->len = static_cast<uint32_t>(n > UINT32_MAX ? UINT32_MAX : n);
  s->msg_flags = MSG_NOSIGNAL | MSG_WAITALL;
  s->user_data = reinterpret_cast<uintptr_t>(op);
  live_++;
}

void Ring::poll(int fd, RingOp* op) {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_POLL_ADD;
  s->fd = fd;
  s->poll32_events = POLLIN;
  s->user_data = reinterpret_cast<uintptr_t>(op);
  live_++;
}

void Ring::cancel(RingOp* op) {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_ASYNC_CANCEL;
  s->fd = -1;
  s->addr = reinterpret_cast<uintptr_t>(op);
  s->flags = IOSQE_CQE_SKIP_SUCCESS; // user_data 0: a failure (nothing to cancel) is ignored
}

void Ring::cancelFd(int fd) {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_ASYNC_CANCEL;
  s->fd = fd;
  s->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
  s->flags = IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::cancelAll() {
  io_uring_sqe* s = sqe();
  s->opcode = IORING_OP_ASYNC_CANCEL;
  s->fd = -1;
  s->cancel_flags = IORING_ASYNC_CANCEL_ANY;
  s->flags = IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::submitAndWait(int64_t timeout_ms, unsigned want, unsigned min_wait_us) {
  // Everything the kernel has not consumed yet (entries it left after a failed submit too).
  unsigned submit = sq_local_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
  if (timeout_ms == 0) {
    enter(fd_, submit, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
    return;
  }
  if (!min_wait_ || want < 2) {
    want = 1;
    min_wait_us = 0;
  }
  if (timeout_ms < 0 && min_wait_us == 0) {
    enter(fd_, submit, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    return;
  }
  // With a min-wait, "no limit" becomes a minute: the loop comes back and waits again.
  const int64_t ms = timeout_ms < 0 ? 60000 : timeout_ms;
  __kernel_timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000;
  io_uring_getevents_arg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.ts = reinterpret_cast<uintptr_t>(&ts);
  arg.pad = min_wait_us; // min_wait_usec since Linux 6.12 (6.1's headers call it pad)
  // -ETIME (the timeout), -EINTR (a signal) and -EBUSY (completions overflowed: reaping frees
  // room) all end the wait; the loop reaps and comes back.
  enter(fd_, submit, want, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
}

unsigned Ring::reap() {
  const auto* cqes = static_cast<const io_uring_cqe*>(cqes_);
  unsigned n = 0;
  for (;;) {
    unsigned head = *cq_head_;
    if (head == __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
      return n;
    }
    const io_uring_cqe& c = cqes[head & cq_mask_];
    auto* op = reinterpret_cast<RingOp*>(static_cast<uintptr_t>(c.user_data));
    int32_t res = c.res;
    uint32_t flags = c.flags;
    // Consumed before the callback runs: it may queue operations (and enter the kernel).
    __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);
    n++;
    if (op == nullptr) {
      continue; // a cancel that found nothing left to cancel
    }
    if ((flags & kCqMore) == 0) {
      live_--;
    }
    op->complete(op, res, flags);
  }
}

void Ring::recycle(uint16_t bid) {
  auto* bufs = static_cast<io_uring_buf*>(buf_ring_);
  io_uring_buf& b = bufs[buf_tail_ & (kBuffers - 1)]; // entry 0's resv is the tail: not written
  b.addr = reinterpret_cast<uintptr_t>(buffers_ + size_t{bid} * kBufferSize);
  b.len = kBufferSize;
  b.bid = bid;
  buf_tail_++;
  __atomic_store_n(bufRingTail(buf_ring_), buf_tail_, __ATOMIC_RELEASE);
}

} // namespace sluice::event
