#include "core/server/worker.h"

#include <unistd.h>

#include "core/common/logger.h"
#include "core/filter/stream_stats.h"

namespace sluice::server {

Worker::Worker(uint32_t index, filter::SnapshotPtr snapshot, std::vector<ListenerSocket> sockets)
    : index_(index), initial_(std::move(snapshot)), sockets_(std::move(sockets)) {}

Worker::~Worker() {
  join();
  for (auto& s : sockets_) {
    if (s.fd >= 0) {
      ::close(s.fd);
    }
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::run() {
  context_ = std::make_unique<filter::WorkerContext>(dispatcher_, index_);
  context_->install(std::move(initial_));
  for (auto& s : sockets_) {
    auto* l = new Listener{this, s.listener_index, {}, 0};
    uv_tcp_init(dispatcher_.loop(), &l->handle);
    l->handle.data = l;
    if (uv_tcp_open(&l->handle, s.fd) != 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(&l->handle), 1024, &Worker::onConnection) != 0) {
      SLUICE_LOG(Error, "worker", "worker {}: cannot listen on fd {}", index_, s.fd);
    }
    s.fd = -1;  // owned by the handle now
    listeners_.push_back(l);
  }
  dispatcher_.run();
  // Loop exited: release everything on this thread.
  for (auto& c : connections_) {
    c->abort();
  }
  connections_.clear();
  for (Listener* l : listeners_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->handle),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  listeners_.clear();
  context_->shutdown();
  dispatcher_.closeAll();
  context_.reset();
  dispatcher_.closeAll();
}

void Worker::onConnection(uv_stream_t* server, int status) {
  auto* l = static_cast<Listener*>(server->data);
  Worker* w = l->worker;
  if (status != 0 || w->draining_) {
    return;
  }
  const auto& snap = w->context_->current()->snapshot();
  const filter::ListenerRuntime& lr = snap.listeners[l->listener_index];
  auto conn = std::make_unique<HttpConnection>(*w, l->listener_index, *lr.config);
  if (conn->accept(server) != 0) {
    conn->abort();
    return;
  }
  if (w->active_connections_.load(std::memory_order_relaxed) >= lr.config->limits.max_connections) {
    // Over the limit: the connection is accepted and closed at once (never queued forever).
    conn->abort();
    return;
  }
  w->connections_.push_front(std::move(conn));
  w->connections_.front()->self = w->connections_.begin();
  w->connections_.front()->listed = true;
  w->active_connections_.fetch_add(1, std::memory_order_relaxed);
  filter::stats::connectionOpened(lr, 1);
}

void Worker::removeConnection(HttpConnection* c) {
  // abort() on a connection that never made it into the list.
  if (!c->listed) {
    return;
  }
  c->listed = false;
  const auto& snap = context_->current()->snapshot();
  if (c->listenerIndex() < snap.listeners.size()) {
    filter::stats::connectionOpened(snap.listeners[c->listenerIndex()], -1);
  }
  std::unique_ptr<HttpConnection> owned = std::move(*c->self);
  connections_.erase(c->self);
  active_connections_.fetch_sub(1, std::memory_order_relaxed);
  dispatcher_.deferredDelete(std::move(owned));
  maybeExit();
}

void Worker::recordProtocolError(size_t listener_index, uint32_t status) {
  const auto& snap = context_->current()->snapshot();
  filter::stats::recordStream(*context_, listener_index, snap.listeners[listener_index], status, 0,
                              nullptr, false);
}

void Worker::stopAccepting() {
  dispatcher_.post([this] {
    draining_ = true;
    for (Listener* l : listeners_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&l->handle),
               [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
    }
    listeners_.clear();
    std::vector<HttpConnection*> idle;
    for (auto& c : connections_) {
      idle.push_back(c.get());
    }
    for (HttpConnection* c : idle) {
      c->drain();
    }
  });
}

void Worker::exitWhenIdle() {
  dispatcher_.post([this] {
    exit_when_idle_ = true;
    maybeExit();
  });
}

void Worker::maybeExit() {
  if (exit_when_idle_ && connections_.empty()) {
    uv_stop(dispatcher_.loop());
  }
}

void Worker::abortAll() {
  dispatcher_.post([this] {
    std::vector<HttpConnection*> all;
    for (auto& c : connections_) {
      all.push_back(c.get());
    }
    if (!all.empty()) {
      SLUICE_LOG(Warn, "worker", "worker {}: aborting {} connection(s) at teardown", index_,
                 all.size());
    }
    for (HttpConnection* c : all) {
      c->abort();
    }
    uv_stop(dispatcher_.loop());
  });
}

} // namespace sluice::server
