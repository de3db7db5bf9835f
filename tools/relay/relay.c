// sluice-bench-relay: a TCP relay with no HTTP in it, to measure the floor of what any proxy on a
// machine pays per request in the kernel, and what a different way of waiting buys (issue 12:
// BENCHMARKS.md, "The kernel floor"). Not part of sluice: a measuring instrument.
//
//   sluice-bench-relay MODE PORT UPSTREAM_PORT
//     MODE epoll       level-triggered epoll_wait for up to 1024 events, then recv/send per
//                      ready socket: how libuv (and so sluice) waits
//     MODE uring       io_uring (SINGLE_ISSUER | DEFER_TASKRUN): RECV on every socket; a
//                      completion submits SEND to the other side linked to the next RECV, one
//                      io_uring_enter per loop submits all of them and waits for 1 completion
//     MODE uring:K:M   the same, but each wait ends at K completions, or once M µs have passed
//                      and at least one is there (IORING_FEAT_MIN_TIMEOUT, Linux 6.12+)
//     MODE uring:auto:M  K follows the load: the requests sent upstream whose response has not
//                      come yet (at least 1, at most 64)
//     MODE uring-direct, uring-direct:K:M
//                      the same waits and RECVs, but what arrives is sent at once with send(2)
//                      (as sluice writes today), not through the ring
//
// Listens on 127.0.0.1:PORT (0: any free port) and prints "listening 127.0.0.1:P" on stdout.
// Each client gets its own upstream connection to 127.0.0.1:UPSTREAM_PORT (1:1, TCP_NODELAY on
// both) and bytes go across as they come, so keep-alive HTTP passes through unchanged. On
// SIGTERM or SIGINT it writes one line of counts (waits, completions, reads, context switches,
// CPU) to stderr, or to the file named by SLUICE_RELAY_STATS, and exits 0. Exit 3: the kernel
// lacks what MODE needs (io_uring disabled, or no min-wait).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 4096
#define BUF_SIZE 16384
#define FEAT_MIN_TIMEOUT (1U << 15) // IORING_FEAT_MIN_TIMEOUT (Linux 6.12; newer than the headers)

struct side {
  int fd;
  char buf[BUF_SIZE];
};

struct pair {
  struct side s[2]; // 0: the client, 1: the upstream
  int open;
  int awaiting; // the last bytes relayed went upstream (counted in `awaiting`)
  int inflight; // io_uring operations not yet completed
  int closing;
};

static struct pair* pairs[MAX_PAIRS];
static volatile sig_atomic_t stop;
static uint64_t n_waits, n_events, n_reads, n_client_reads;
static int listen_fd;
static int upstream_port;
static int direct_send;   // uring-direct: send(2) instead of SEND through the ring
static unsigned awaiting; // pairs whose last relayed bytes went upstream: a response is due

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void die(const char* what) {
  fprintf(stderr, "sluice-bench-relay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&a, sizeof(a)) != 0)
    die("bind");
  if (listen(fd, 1024) != 0)
    die("listen");
  socklen_t len = sizeof(a);
  getsockname(fd, (struct sockaddr*)&a, &len);
  printf("listening 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static int connect_upstream(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// A pair for a new client (its upstream connected, blocking: set-up is not what is measured), or
// -1 with the client closed.
static int new_pair(int client) {
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int up = connect_upstream();
  if (up < 0) {
    close(client);
    return -1;
  }
  for (int i = 0; i < MAX_PAIRS; i++) {
    if (pairs[i] == NULL && (pairs[i] = calloc(1, sizeof(struct pair))) == NULL)
      break;
    if (!pairs[i]->open) {
      pairs[i]->s[0].fd = client;
      pairs[i]->s[1].fd = up;
      pairs[i]->open = 1;
      pairs[i]->inflight = 0;
      pairs[i]->awaiting = 0;
      pairs[i]->closing = 0;
      return i;
    }
  }
  close(client);
  close(up);
  return -1;
}

// Closes both sockets of a pair (which also takes them out of an epoll set) and frees its slot.
static void pair_release(struct pair* pr) {
  close(pr->s[0].fd);
  close(pr->s[1].fd);
  pr->open = 0;
}

static void report(const char* mode) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  FILE* out = stderr;
  const char* path = getenv("SLUICE_RELAY_STATS");
  if (path != NULL && (out = fopen(path, "w")) == NULL)
    out = stderr;
  fprintf(out,
          "mode=%s waits=%llu completions=%llu reads=%llu client_reads=%llu "
          "waits_per_client_read=%.3f voluntary_switches=%ld involuntary_switches=%ld "
          "cpu_s=%.3f\n",
          mode, (unsigned long long)n_waits, (unsigned long long)n_events,
          (unsigned long long)n_reads, (unsigned long long)n_client_reads,
          n_client_reads ? (double)n_waits / (double)n_client_reads : 0.0, ru.ru_nvcsw,
          ru.ru_nivcsw,
          (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  if (out != stderr)
    fclose(out);
}

// ---------------------------------------------------------------------------------------- epoll

// The upstream sockets are blocking and the clients are not; a full socket buffer (never seen
// with the bodies peers.sh uses) is waited out in short sleeps: correct, not fast.
static void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct timespec ts = {0, 10000};
      nanosleep(&ts, NULL);
    } else {
      return;
    }
  }
}

static void run_epoll(void) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  static struct epoll_event events[1024];
  while (!stop) {
    int n = epoll_wait(ep, events, 1024, -1);
    n_waits++;
    if (n < 0)
      continue;
    n_events += (uint64_t)n;
    for (int i = 0; i < n; i++) {
      uint64_t id = events[i].data.u64;
      if (id == UINT64_MAX) {
        int c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0)
          continue;
        int p = new_pair(c);
        if (p < 0)
          continue;
        for (int d = 0; d < 2; d++) {
          struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)p * 2 + (uint64_t)d};
          epoll_ctl(ep, EPOLL_CTL_ADD, pairs[p]->s[d].fd, &e);
        }
        continue;
      }
      struct pair* pr = pairs[id / 2];
      int d = (int)(id % 2);
      if (!pr->open)
        continue;
      ssize_t r = recv(pr->s[d].fd, pr->s[d].buf, BUF_SIZE, MSG_DONTWAIT);
      n_reads++;
      if (d == 0)
        n_client_reads++;
      if (r > 0) {
        write_all(pr->s[1 - d].fd, pr->s[d].buf, (size_t)r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        pair_release(pr);
      }
    }
  }
  report("epoll");
}

// ---------------------------------------------------------------------------------------- uring

struct ring {
  int fd;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe* sqes;
  struct io_uring_cqe* cqes;
  unsigned pending; // prepared, not yet submitted
};

static struct ring ring;

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static uint64_t tag(int op, int pair, int dir) {
  return ((uint64_t)op << 32) | ((uint64_t)pair << 1) | (uint64_t)dir;
}

static int enter(unsigned submit, unsigned wait_nr, unsigned flags, void* arg, size_t argsz) {
  return (int)syscall(__NR_io_uring_enter, ring.fd, submit, wait_nr, flags, arg, argsz);
}

static void publish(void) {
  __atomic_store_n(ring.sq_tail, *ring.sq_tail + ring.pending, __ATOMIC_RELEASE);
}

static struct io_uring_sqe* get_sqe(void) {
  for (;;) {
    unsigned tail = *ring.sq_tail + ring.pending;
    unsigned head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
    if (tail - head <= *ring.sq_mask) {
      unsigned idx = tail & *ring.sq_mask;
      ring.sq_array[idx] = idx;
      ring.pending++;
      struct io_uring_sqe* sqe = &ring.sqes[idx];
      memset(sqe, 0, sizeof(*sqe));
      return sqe;
    }
    // The submission ring is full: hand what is there to the kernel first.
    publish();
    unsigned n = ring.pending;
    ring.pending = 0;
    if (enter(n, 0, 0, NULL, 0) < 0 && errno != EINTR)
      die("io_uring_enter (submit)");
  }
}

static void prep_recv(int p, int d) {
  struct io_uring_sqe* s = get_sqe();
  s->opcode = IORING_OP_RECV;
  s->fd = pairs[p]->s[d].fd;
  s->addr = (uint64_t)(uintptr_t)pairs[p]->s[d].buf;
  s->len = BUF_SIZE;
  s->user_data = tag(OP_RECV, p, d);
  pairs[p]->inflight++;
}

// SEND what side d read to the other side, then (linked) the next RECV on side d into the same
// buffer once the send is done. A send that succeeds posts no completion.
static void prep_send_then_recv(int p, int d, unsigned n) {
  struct io_uring_sqe* s = get_sqe();
  s->opcode = IORING_OP_SEND;
  s->fd = pairs[p]->s[1 - d].fd;
  s->addr = (uint64_t)(uintptr_t)pairs[p]->s[d].buf;
  s->len = n;
  s->msg_flags = MSG_WAITALL | MSG_NOSIGNAL;
  s->flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
  s->user_data = tag(OP_SEND, p, d);
  pairs[p]->inflight++;
  prep_recv(p, d);
}

static void prep_accept(void) {
  struct io_uring_sqe* s = get_sqe();
  s->opcode = IORING_OP_ACCEPT;
  s->fd = listen_fd;
  s->user_data = tag(OP_ACCEPT, 0, 0);
}

static void pair_op_done(int p) {
  struct pair* pr = pairs[p];
  if (--pr->inflight == 0 && pr->closing) {
    pair_release(pr);
  }
}

// Shutting both sockets down completes the other side's pending RECV; the fds are closed when
// the pair has nothing in flight.
static void pair_close(int p) {
  struct pair* pr = pairs[p];
  if (!pr->closing) {
    pr->closing = 1;
    if (pr->awaiting) {
      pr->awaiting = 0;
      awaiting--;
    }
    shutdown(pr->s[0].fd, SHUT_RDWR);
    shutdown(pr->s[1].fd, SHUT_RDWR);
  }
}

// Sets the ring up; returns the kernel's IORING_FEAT_* bits.
static unsigned setup_ring(void) {
  struct io_uring_params params;
  memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = 16384;
  ring.fd = (int)syscall(__NR_io_uring_setup, 4096, &params);
  if (ring.fd < 0) {
    fprintf(stderr, "sluice-bench-relay: io_uring_setup: %s (io_uring disabled or too old)\n",
            strerror(errno));
    exit(3);
  }
  if (!(params.features & IORING_FEAT_SINGLE_MMAP)) {
    fprintf(stderr, "sluice-bench-relay: io_uring without IORING_FEAT_SINGLE_MMAP\n");
    exit(3);
  }
  size_t sq_len = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_len = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  size_t len = sq_len > cq_len ? sq_len : cq_len;
  char* rings = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd,
                     IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED)
    die("mmap (rings)");
  ring.sq_head = (unsigned*)(rings + params.sq_off.head);
  ring.sq_tail = (unsigned*)(rings + params.sq_off.tail);
  ring.sq_mask = (unsigned*)(rings + params.sq_off.ring_mask);
  ring.sq_array = (unsigned*)(rings + params.sq_off.array);
  ring.cq_head = (unsigned*)(rings + params.cq_off.head);
  ring.cq_tail = (unsigned*)(rings + params.cq_off.tail);
  ring.cq_mask = (unsigned*)(rings + params.cq_off.ring_mask);
  ring.cqes = (struct io_uring_cqe*)(rings + params.cq_off.cqes);
  ring.sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQES);
  if (ring.sqes == MAP_FAILED)
    die("mmap (sqes)");
  return params.features;
}

static void handle(const struct io_uring_cqe* c) {
  n_events++;
  int op = (int)(c->user_data >> 32);
  int p = (int)((c->user_data & 0xffffffffu) >> 1);
  int d = (int)(c->user_data & 1);
  int res = c->res;
  if (op == OP_ACCEPT) {
    prep_accept();
    if (res >= 0) {
      int np = new_pair(res);
      if (np >= 0) {
        prep_recv(np, 0);
        prep_recv(np, 1);
      }
    }
  } else if (op == OP_RECV) {
    n_reads++;
    if (d == 0)
      n_client_reads++;
    if (res > 0 && !pairs[p]->closing) {
      if (pairs[p]->awaiting != (d == 0)) {
        pairs[p]->awaiting = d == 0;
        awaiting += d == 0 ? 1u : -1u;
      }
      if (direct_send) {
        write_all(pairs[p]->s[1 - d].fd, pairs[p]->s[d].buf, (size_t)res);
        prep_recv(p, d);
      } else {
        prep_send_then_recv(p, d, (unsigned)res);
      }
    } else {
      pair_close(p);
    }
    pair_op_done(p);
  } else if (op == OP_SEND) {
    // Only a failed send posts a completion; its linked RECV then completes with -ECANCELED.
    pair_close(p);
    pair_op_done(p);
  }
}

// wait_nr 0: follow the load (uring:auto:M).
static void run_uring(const char* mode, unsigned wait_nr, unsigned min_wait_us) {
  prep_accept();
  // With a min-wait, ts is a long overall limit: past the min-wait any completion ends the wait.
  struct __kernel_timespec ts = {.tv_sec = 1, .tv_nsec = 0};
  struct io_uring_getevents_arg arg;
  memset(&arg, 0, sizeof(arg));
  arg.ts = (uint64_t)(uintptr_t)&ts;
  arg.pad = min_wait_us; // min_wait_usec since Linux 6.12 (the 6.1 headers call it pad)
  while (!stop) {
    publish();
    unsigned submit = ring.pending;
    ring.pending = 0;
    const unsigned want = wait_nr != 0 ? wait_nr : awaiting < 1 ? 1 : awaiting > 64 ? 64 : awaiting;
    int r = min_wait_us > 0 ? enter(submit, want, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                                    &arg, sizeof(arg))
                            : enter(submit, want, IORING_ENTER_GETEVENTS, NULL, 0);
    n_waits++;
    if (r < 0 && errno != EINTR && errno != ETIME && errno != EAGAIN && errno != EBUSY) {
      die("io_uring_enter");
    }
    unsigned head = *ring.cq_head;
    unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) {
      handle(&ring.cqes[head & *ring.cq_mask]);
    }
    __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
  }
  report(mode);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sluice-bench-relay epoll|uring[-direct][:K:M|:auto:M] PORT "
                    "UPSTREAM_PORT\n");
    return 2;
  }
  const char* mode = argv[1];
  unsigned k = 1, m = 0;
  const char* rest = mode;
  if (strncmp(mode, "uring-direct", 12) == 0) {
    direct_send = 1;
    rest = mode + 12;
  } else if (strncmp(mode, "uring", 5) == 0) {
    rest = mode + 5;
  }
  char tail;
  int bad = strcmp(mode, "epoll") != 0 && rest == mode;
  if (!bad && rest != mode && strncmp(rest, ":auto:", 6) == 0) {
    k = 0; // follow the load
    bad = sscanf(rest + 6, "%u%c", &m, &tail) != 1 || m == 0;
  } else if (!bad && rest != mode && *rest != '\0') {
    bad = sscanf(rest, ":%u:%u%c", &k, &m, &tail) != 2 || k == 0 || m == 0;
  }
  if (bad) {
    fprintf(stderr,
            "sluice-bench-relay: unknown mode '%s' (epoll, uring, uring:K:M, uring:auto:M, "
            "uring-direct, uring-direct:K:M with K, M > 0)\n",
            mode);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  upstream_port = atoi(argv[3]);
  if (strcmp(mode, "epoll") != 0) {
    const unsigned features = setup_ring();
    if (m > 0 && !(features & FEAT_MIN_TIMEOUT)) {
      fprintf(stderr, "sluice-bench-relay: %s needs io_uring's min-wait (Linux 6.12+)\n", mode);
      return 3;
    }
  }
  listen_fd = listen_on(atoi(argv[2]));
  if (strcmp(mode, "epoll") == 0) {
    run_epoll();
  } else {
    run_uring(mode, k, m);
  }
  return 0;
}
