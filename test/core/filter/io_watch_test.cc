// The C ABI 1.1 file-descriptor watches on a real worker loop: readiness callbacks, update,
// pause, close from inside the callback, refusals, and watches left open at shutdown.
#include "core/event/dispatcher.h"
#include "core/filter/registry.h"
#include "core/filter/worker_context.h"

#include <catch2/catch.hpp>
#include <vector>

#include <unistd.h>

using namespace sluice;

namespace {

struct Watcher {
  const sluice_host_t* host = filter::hostTable();
  sluice_worker_t* worker = nullptr;
  sluice_io_id_t id = 0;
  std::vector<uint32_t> events;
  bool close_in_callback = false;
  int read_fd = -1;

  static void onIo(void* p, uint32_t e) {
    auto* self = static_cast<Watcher*>(p);
    self->events.push_back(e);
    if ((e & SLUICE_IO_READABLE) != 0 && self->read_fd >= 0) {
      char buf[16];
      (void)::read(self->read_fd, buf, sizeof(buf));
    }
    if (self->close_in_callback) {
      self->host->sluice_host_io_close(self->worker, self->id);
    }
  }
};

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe(fds) == 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

void turn(event::Dispatcher& d) {
  uv_run(d.loop(), UV_RUN_NOWAIT);
}

} // namespace

TEST_CASE("IoWatch: the host table of ABI 1.1 has the watch functions", "[filter]") {
  const sluice_host_t* h = filter::hostTable();
  CHECK(h->abi_minor >= 1);
  CHECK(h->size >= offsetof(sluice_host_t, sluice_host_io_close) + sizeof(h->sluice_host_io_close));
  CHECK(h->sluice_host_io_watch != nullptr);
  CHECK(h->sluice_host_io_update != nullptr);
  CHECK(h->sluice_host_io_close != nullptr);
}

TEST_CASE("IoWatch: readable and writable events, update and pause", "[filter]") {
  event::Dispatcher dispatcher;
  filter::WorkerContext worker{dispatcher, 0};
  Pipe p;
  Watcher w;
  w.worker = reinterpret_cast<sluice_worker_t*>(&worker);
  w.read_fd = p.fds[0];
  w.id = w.host->sluice_host_io_watch(w.worker, p.fds[0], SLUICE_IO_READABLE, &Watcher::onIo, &w);
  REQUIRE(w.id != 0);
  turn(dispatcher);
  CHECK(w.events.empty()); // nothing to read yet
  REQUIRE(::write(p.fds[1], "x", 1) == 1);
  turn(dispatcher);
  REQUIRE(w.events.size() == 1);
  CHECK(w.events[0] == SLUICE_IO_READABLE);

  // Paused: data waits.
  w.host->sluice_host_io_update(w.worker, w.id, 0);
  REQUIRE(::write(p.fds[1], "y", 1) == 1);
  turn(dispatcher);
  CHECK(w.events.size() == 1);
  w.host->sluice_host_io_update(w.worker, w.id, SLUICE_IO_READABLE);
  turn(dispatcher);
  CHECK(w.events.size() == 2);
  w.host->sluice_host_io_close(w.worker, w.id);

  // The write end is writable at once.
  Watcher out;
  out.worker = w.worker;
  out.id = out.host->sluice_host_io_watch(out.worker, p.fds[1], 0, &Watcher::onIo, &out);
  REQUIRE(out.id != 0);
  turn(dispatcher);
  CHECK(out.events.empty());
  out.host->sluice_host_io_update(out.worker, out.id, SLUICE_IO_WRITABLE);
  turn(dispatcher);
  REQUIRE_FALSE(out.events.empty());
  CHECK(out.events[0] == SLUICE_IO_WRITABLE);
  out.host->sluice_host_io_close(out.worker, out.id);
  // Unknown ids are ignored.
  out.host->sluice_host_io_update(out.worker, out.id, SLUICE_IO_READABLE);
  out.host->sluice_host_io_close(out.worker, out.id);
  worker.shutdown();
}

TEST_CASE("IoWatch: a watch may close itself from its callback", "[filter]") {
  event::Dispatcher dispatcher;
  filter::WorkerContext worker{dispatcher, 0};
  Pipe p;
  Watcher w;
  w.worker = reinterpret_cast<sluice_worker_t*>(&worker);
  w.close_in_callback = true;
  w.id = w.host->sluice_host_io_watch(w.worker, p.fds[1], SLUICE_IO_WRITABLE, &Watcher::onIo, &w);
  REQUIRE(w.id != 0);
  turn(dispatcher);
  turn(dispatcher);
  CHECK(w.events.size() == 1); // never again after the close
  // The fd can be watched again once the old watch is closed.
  Watcher again;
  again.worker = w.worker;
  again.id = again.host->sluice_host_io_watch(again.worker, p.fds[1], 0, &Watcher::onIo, &again);
  CHECK(again.id != 0);
  again.host->sluice_host_io_close(again.worker, again.id);
  worker.shutdown();
}

TEST_CASE("IoWatch: bad and duplicate fds are refused; leftovers close at shutdown", "[filter]") {
  event::Dispatcher dispatcher;
  filter::WorkerContext worker{dispatcher, 0};
  const sluice_host_t* h = filter::hostTable();
  auto* wk = reinterpret_cast<sluice_worker_t*>(&worker);
  Watcher w;
  CHECK(h->sluice_host_io_watch(wk, -1, SLUICE_IO_READABLE, &Watcher::onIo, &w) == 0);
  CHECK(h->sluice_host_io_watch(wk, 0, SLUICE_IO_READABLE, nullptr, &w) == 0);
  Pipe p;
  sluice_io_id_t a = h->sluice_host_io_watch(wk, p.fds[0], SLUICE_IO_READABLE, &Watcher::onIo, &w);
  CHECK(a != 0);
  CHECK(h->sluice_host_io_watch(wk, p.fds[0], SLUICE_IO_READABLE, &Watcher::onIo, &w) == 0);
  // `a` is left open: shutdown closes it (and ASan checks nothing leaks).
  worker.shutdown();
}
