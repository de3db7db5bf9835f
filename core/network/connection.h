#pragma once

// A TCP connection on a worker loop: a read buffer the owner parses in place, a write buffer, and
// watermark callbacks for backpressure. Two ways to move bytes, chosen by the dispatcher:
// - io_uring (Dispatcher::ring()): a multishot receive into the ring's provided buffers, appended
//   to the read buffer as they come; the write buffer is sent through the ring, submitted with
//   everything else queued in the same loop turn;
// - epoll: libuv reads, and a direct send() first (no extra copy or syscall when the socket takes
//   it all), libuv's write for the rest.
// The libuv handle and whatever the kernel may still touch live in a separate box, freed once the
// handle is closed and the ring has nothing of it in flight, so the Connection object itself may
// be destroyed right after close().

#include "core/event/dispatcher.h"
#include "core/network/buffer.h"
#include "core/network/socket.h"
#include "core/tls/context.h"

#include <cstdint>
#include <memory>
#include <string>

#include <uv.h>

namespace sluice::network {

class ConnectionCallbacks {
public:
  virtual ~ConnectionCallbacks() = default;
  // New bytes were appended to readBuffer().
  virtual void onData() = 0;
  // The peer closed its side (EOF) or the connection failed (err < 0). The owner should close.
  virtual void onRemoteClose(int err) = 0;
  // Outgoing bytes went below the low watermark after having been above the high one.
  virtual void onWriteDrained() {}
  // Outgoing connect finished (status 0 or a negative libuv error).
  virtual void onConnected(int status) { (void)status; }
  // Every byte queued so far has been handed to the kernel (used for close-after-write).
  virtual void onWriteFlushed() {}
  // closeAfterFlush() finished: the connection is closed now.
  virtual void onLocalClose() {}
};

class Connection {
public:
  static constexpr size_t kHighWatermark = 1024 * 1024;
  static constexpr size_t kLowWatermark = 256 * 1024;
  static constexpr size_t kReadChunk = 16 * 1024;

  Connection(event::Dispatcher& dispatcher, ConnectionCallbacks& cb);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accept a pending connection from a listening handle. Returns 0 or a libuv error.
  int accept(uv_stream_t* server);
  // Take over a connected socket accepted elsewhere (another worker's listener). Returns 0 (the
  // connection owns fd) or a libuv error (the caller still owns fd).
  int adopt(int fd);
  // Start an outgoing connect.
  int connect(const SockAddr& addr);
  // TLS over this connection (before any byte flows): the server side of an accepted one, or the
  // client side to the endpoint `host` (the handshake starts once connected). readBuffer() and
  // writeBuffer() stay plaintext. False (and no TLS) when the session could not be opened.
  bool enableTls(const tls::ServerContext& ctx);
  bool enableTls(const tls::ClientContext& ctx, const std::string& host, bool host_is_ip);
  bool tls() const { return tls_ != nullptr; }
  void setCallbacks(ConnectionCallbacks& cb) { cb_ = &cb; }

  Buffer& readBuffer() { return read_buf_; }
  Buffer& writeBuffer() { return write_buf_; }
  // Send what is queued in writeBuffer().
  void flush();
  void readEnable(bool enable);
  bool readEnabled() const { return reading_; }
  // Bytes queued but not yet handed to the kernel.
  size_t pendingBytes() const;
  // True above the high watermark; the connection then reports onWriteDrained() once the
  // queue falls under the low watermark.
  bool aboveHighWatermark() const {
    if (pendingBytes() > kHighWatermark) {
      above_high_ = true;
    }
    return above_high_;
  }
  // Close now (queued bytes are discarded unless flushed already).
  void close(bool reset = false);
  // Close once every queued byte has been written.
  void closeAfterFlush();
  bool closed() const { return box_ == nullptr; }
  bool connected() const { return connected_; }
  const std::string& peerAddress() const { return peer_; }
  const std::string& peerIp() const { return peer_ip_; }
  int fd() const;

private:
  struct Box;
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onConnect(uv_connect_t* req, int status);
  // io_uring
  static void onRingRecv(event::RingOp* op, int32_t res, uint32_t flags);
  static void onRingSend(event::RingOp* op, int32_t res, uint32_t flags);
  static void closeHandle(Box* box);
  void armRecv();
  void redeliver();
  struct Redeliver : event::DeferredCall {
    Connection* self = nullptr;
    void onDeferredCall() override { self->redeliver(); }
  };
  void startWrite();
  void fillPeer();
  struct Tls;
  Buffer& wire(); // what goes to the socket: write_buf_, or the TLS output
  // TLS: feed ciphertext, run the handshake, decrypt into read_buf_. Returns false (after
  // reporting onRemoteClose) when the connection failed or the peer closed.
  bool tlsIngest(const char* data, size_t len);
  void tlsEncrypt();
  void tlsFail(int err);

  event::Dispatcher& dispatcher_;
  ConnectionCallbacks* cb_;
  Box* box_;
  Buffer read_buf_;
  Buffer write_buf_;
  bool reading_ = false;
  bool connected_ = false;
  mutable bool above_high_ = false;
  bool close_after_flush_ = false;
  std::string peer_;
  std::string peer_ip_;
  std::unique_ptr<Tls> tls_;
  // io_uring: bytes that arrived while reading was disabled, handed over once it is enabled,
  // and the end of the stream (EOF 0 or an error) if it came after them.
  static constexpr int kNoPendingClose = 1;
  Buffer stash_;
  int pending_close_ = kNoPendingClose;
  Redeliver redeliver_;
};

} // namespace sluice::network
