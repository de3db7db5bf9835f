#pragma once

// A downstream HTTP/1.1 connection: parses requests in place, runs one Stream at a time
// (pipelined requests wait their turn), enforces header size and timeouts, and tunnels raw
// bytes after a 101.

#include "core/filter/stream.h"
#include "core/http/codec.h"
#include "core/network/connection.h"

#include <atomic>
#include <list>
#include <memory>

namespace sluice::server {

class Worker;

class HttpConnection : public network::ConnectionCallbacks,
                       public filter::StreamOwner,
                       public http::BodySink,
                       public event::DeferredDeletable {
public:
  HttpConnection(Worker& worker, filter::WorkerSnapshotPtr snap, size_t listener_index);
  ~HttpConnection() override;

  int accept(uv_stream_t* server);
  // Drain: close now if idle, else after the current response.
  void drain();
  // Abort at teardown.
  void abort();
  // A reload was installed: an idle connection whose listener is gone closes now.
  void onSnapshotChanged();
  bool idle() const { return !stream_.active() && !tunnel_; }
  std::list<std::unique_ptr<HttpConnection>>::iterator self;
  bool listed = false;
  // Open connections of the listener it came in on, all workers together (limits.max_connections):
  // taken when it is listed, given back when it is removed.
  std::shared_ptr<std::atomic<uint64_t>> listener_open;
  const filter::ListenerRuntime& listenerRuntime() const {
    return snap_->snapshot().listeners[listener_index_];
  }

  // network::ConnectionCallbacks
  void onData() override;
  void onRemoteClose(int err) override;
  void onWriteDrained() override;
  void onLocalClose() override;
  // http::BodySink
  void onBodyData(std::string_view data) override;
  // filter::StreamOwner
  network::Buffer& downstreamOut() override { return conn_.writeBuffer(); }
  void flushDownstream() override;
  bool downstreamAboveHighWatermark() const override { return conn_.aboveHighWatermark(); }
  void readDisableDownstream(bool disable) override;
  void onStreamDone(bool close_connection) override;
  void onTunnelStart(upstream::UpstreamConnection* up) override;
  void onTunnelData(std::string_view data) override;
  void onTunnelClosed() override;
  const std::string& peerAddress() const override { return conn_.peerAddress(); }
  const std::string& peerIp() const override { return conn_.peerIp(); }
  bool draining() const override;

private:
  void processInput();
  void protocolError(uint32_t status);
  void shed(const char* reason);
  // Overload accounting: this connection's buffered bytes and in-flight request, as the
  // worker counts them.
  void accountBuffered();
  void endRequest();
  void armHeaderTimer();
  void armIdleTimer();
  void onTimer();
  void destroy();

  // Follows the worker's live snapshot between requests (a reload may renumber listeners);
  // false when this connection's listener was removed.
  bool refreshSnapshot();

  Worker& worker_;
  filter::WorkerSnapshotPtr snap_; // keeps cfg_ alive
  size_t listener_index_;
  const config::ListenerConfig* cfg_;
  std::string listener_name_;
  network::Connection conn_;
  http::Arena arena_;
  http::Parser parser_;
  network::Buffer head_buf_;
  filter::Stream stream_;
  event::TimerPtr timer_;
  upstream::UpstreamConnection* tunnel_ = nullptr;
  enum class TimerKind { None, Header, Idle } timer_kind_ = TimerKind::None;
  bool in_parse_ = false;
  bool request_done_ = false; // the current request was fully read
  bool need_resume_ = false;
  bool closing_ = false;
  bool destroyed_ = false;
  bool read_disabled_by_stream_ = false;
  bool listener_removed_ = false;
  bool request_counted_ = false;
  uint64_t buffered_accounted_ = 0;
};

} // namespace sluice::server
