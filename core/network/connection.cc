#include "core/network/connection.h"

#include "core/common/assert.h"
#include "core/common/logger.h"

#include <algorithm>
#include <cerrno>

#include <netinet/tcp.h>
#include <sys/socket.h>

namespace sluice::network {

struct Connection::Box {
  struct Op : event::RingOp {
    Box* box = nullptr;
  };
  uv_tcp_t tcp;
  uv_write_t wreq;
  uv_connect_t creq;
  Buffer inflight; // bytes being written (the kernel reads them while a ring send runs)
  int fd = -1;     // once accepted or connecting
  bool writing = false;
  Connection* owner = nullptr;
  // io_uring (ring != nullptr): operations in flight; the handle closes once none is left.
  event::Ring* ring = nullptr;
  Op recv_op;
  Op send_op;
  unsigned ops = 0;
  bool recv_armed = false;     // the multishot receive runs
  bool recv_cancelled = false; // ... and a cancel for it is queued
  bool closing = false;        // closed by its owner, waiting for its operations to end
  bool reset = false;          // close with RST
  bool requests = false;       // an outgoing connection: what we send is answered
  bool reply_due = false;      // ... and a request went out whose reply has not come yet
  event::Dispatcher* dispatcher = nullptr;

  // The reply due on this connection came, or will not (closed).
  void replySettled() {
    if (reply_due) {
      reply_due = false;
      dispatcher->addRepliesDue(-1);
    }
  }
  // For a box its owner closed: the last operation's completion closes the handle.
  void closeIfDone() {
    if (closing && ops == 0) {
      closeHandle(this);
    }
  }
};

struct Connection::Tls {
  tls::Session session;
  Buffer in;  // ciphertext read from the socket
  Buffer out; // ciphertext waiting for the socket
};

Connection::Connection(event::Dispatcher& dispatcher, ConnectionCallbacks& cb)
    : dispatcher_(dispatcher), cb_(&cb), box_(new Box) {
  uv_tcp_init(dispatcher_.loop(), &box_->tcp);
  box_->tcp.data = box_;
  box_->owner = this;
  box_->ring = dispatcher_.ring();
  box_->dispatcher = &dispatcher_;
  box_->recv_op.complete = &Connection::onRingRecv;
  box_->recv_op.box = box_;
  box_->send_op.complete = &Connection::onRingSend;
  box_->send_op.box = box_;
  redeliver_.self = this;
}

Connection::~Connection() {
  close();
}

int Connection::fd() const {
  uv_os_fd_t fd = -1;
  if (box_ != nullptr) {
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&box_->tcp), &fd);
  }
  return fd;
}

void Connection::fillPeer() {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&box_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    peer_ = formatAddress(reinterpret_cast<sockaddr*>(&ss), true);
    peer_ip_ = formatAddress(reinterpret_cast<sockaddr*>(&ss), false);
  }
}

int Connection::accept(uv_stream_t* server) {
  int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&box_->tcp));
  if (rc != 0) {
    return rc;
  }
  uv_tcp_nodelay(&box_->tcp, 1);
  uv_fileno(reinterpret_cast<uv_handle_t*>(&box_->tcp), &box_->fd);
  connected_ = true;
  fillPeer();
  return 0;
}

int Connection::adopt(int fd) {
  int rc = uv_tcp_open(&box_->tcp, fd);
  if (rc != 0) {
    return rc;
  }
  uv_tcp_nodelay(&box_->tcp, 1);
  box_->fd = fd;
  connected_ = true;
  fillPeer();
  return 0;
}

int Connection::connect(const SockAddr& addr) {
  box_->creq.data = box_;
  box_->requests = true;
  int rc = uv_tcp_connect(&box_->creq, &box_->tcp, addr.get(), &Connection::onConnect);
  if (rc == 0) {
    uv_tcp_nodelay(&box_->tcp, 1);
    uv_fileno(reinterpret_cast<uv_handle_t*>(&box_->tcp), &box_->fd);
    peer_ = formatAddress(addr.get(), true);
    peer_ip_ = formatAddress(addr.get(), false);
  }
  return rc;
}

bool Connection::enableTls(const tls::ServerContext& ctx) {
  tls_ = std::make_unique<Tls>();
  if (!ctx.open(tls_->session)) {
    tls_.reset();
    return false;
  }
  return true;
}

bool Connection::enableTls(const tls::ClientContext& ctx, const std::string& host,
                           bool host_is_ip) {
  tls_ = std::make_unique<Tls>();
  if (!ctx.open(tls_->session, host, host_is_ip)) {
    tls_.reset();
    return false;
  }
  return true;
}

Buffer& Connection::wire() {
  return tls_ ? tls_->out : write_buf_;
}

void Connection::tlsFail(int err) {
  SLUICE_LOG(Debug, "tls", "TLS with {} failed{}: {}", peer_,
             tls_->session.handshaken() ? "" : " during the handshake", tls_->session.lastError());
  if (box_ != nullptr) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&box_->tcp));
  }
  reading_ = false;
  cb_->onRemoteClose(err);
}

// Plaintext queued by the owner becomes records once the handshake is done; whatever the SSL
// object produced (handshake messages, records, alerts) moves to the wire buffer.
void Connection::tlsEncrypt() {
  Tls& t = *tls_;
  if (!write_buf_.empty()) {
    write_buf_.drain(t.session.write(write_buf_.readPtr(), write_buf_.readable()));
  }
  size_t pending = t.session.pendingOutput();
  while (pending > 0) {
    size_t avail = 0;
    char* p = t.out.reserve(pending, &avail);
    size_t n = t.session.takeOutput(p, std::min(avail, pending));
    if (n == 0) {
      break;
    }
    t.out.commit(n);
    pending = t.session.pendingOutput();
  }
}

bool Connection::tlsIngest(const char* data, size_t len) {
  tls::Session& t = tls_->session;
  t.feed(data, len);
  switch (t.handshake()) {
  case tls::Session::Io::Ok:
    break;
  case tls::Session::Io::WantMore:
    flush(); // our part of the handshake
    return box_ != nullptr;
  default:
    tlsFail(UV_EPROTO);
    return false;
  }
  bool got = false;
  bool eof = false;
  for (;;) {
    size_t avail = 0;
    char* p = read_buf_.reserve(kReadChunk, &avail);
    size_t n = 0;
    tls::Session::Io io = t.read(p, avail, &n);
    if (io == tls::Session::Io::Ok) {
      read_buf_.commit(n);
      got = true;
      continue;
    }
    if (io == tls::Session::Io::WantMore) {
      break;
    }
    if (io == tls::Session::Io::Closed) {
      eof = true; // close_notify
      break;
    }
    tlsFail(UV_EPROTO);
    return false;
  }
  if (t.pendingOutput() > 0 || !write_buf_.empty()) {
    flush(); // handshake tail, tickets, and plaintext queued before the handshake finished
    if (box_ == nullptr) {
      return false;
    }
  }
  if (got) {
    cb_->onData();
  }
  if (eof && box_ != nullptr && box_->owner == this) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&box_->tcp));
    reading_ = false;
    cb_->onRemoteClose(0);
    return false;
  }
  return true;
}

void Connection::onConnect(uv_connect_t* req, int status) {
  Box* box = static_cast<Box*>(req->data);
  if (box->owner == nullptr) {
    return;
  }
  Connection* self = box->owner;
  if (status == 0) {
    self->connected_ = true;
    self->armRecv();
    if (self->tls_) {
      self->tls_->session.handshake(); // the ClientHello; the answer arrives with reads
      self->flush();
      if (self->box_ == nullptr) {
        return;
      }
    } else if (!self->write_buf_.empty()) {
      self->flush();
    }
  }
  self->cb_->onConnected(status);
}

void Connection::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  Box* box = static_cast<Box*>(h->data);
  Connection* self = box->owner;
  size_t avail = 0;
  char* p = (self->tls_ ? self->tls_->in : self->read_buf_).reserve(kReadChunk, &avail);
  *buf = uv_buf_init(p, static_cast<unsigned int>(avail));
}

void Connection::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  Box* box = static_cast<Box*>(s->data);
  Connection* self = box->owner;
  if (self == nullptr) {
    return;
  }
  if (nread > 0) {
    if (self->tls_) {
      Buffer& in = self->tls_->in;
      in.commit(static_cast<size_t>(nread));
      std::string_view data(in.readPtr(), in.readable());
      in.clear();
      self->tlsIngest(data.data(), data.size()); // clear() keeps the bytes: fed before reuse
      return;
    }
    self->read_buf_.commit(static_cast<size_t>(nread));
    self->cb_->onData();
  } else if (nread < 0) {
    uv_read_stop(s);
    self->reading_ = false;
    self->cb_->onRemoteClose(nread == UV_EOF ? 0 : static_cast<int>(nread));
  }
}

// io_uring ---------------------------------------------------------------------------------------

void Connection::armRecv() {
  Box* box = box_;
  if (box == nullptr || box->ring == nullptr || box->recv_armed || !connected_ || !reading_ ||
      pending_close_ != kNoPendingClose || dispatcher_.draining()) {
    return;
  }
  box->recv_armed = true;
  box->recv_cancelled = false;
  box->ops++;
  box->ring->recvMultishot(box->fd, &box->recv_op);
}

void Connection::onRingRecv(event::RingOp* op, int32_t res, uint32_t flags) {
  Box* box = static_cast<Box::Op*>(op)->box;
  event::Ring& ring = *box->ring;
  const bool more = (flags & event::Ring::kCqMore) != 0;
  if (!more) {
    box->recv_armed = false;
    box->ops--;
  }
  const char* data = nullptr;
  uint16_t bid = 0;
  if ((flags & event::Ring::kCqBuffer) != 0) {
    bid = event::Ring::bufferId(flags);
    data = ring.buffer(bid);
  }
  Connection* self = box->owner;
  if (self == nullptr) {
    if (data != nullptr) {
      ring.recycle(bid);
    }
    box->closeIfDone();
    return;
  }
  if (res > 0) {
    SLUICE_ASSERT(data != nullptr, "a receive with bytes and no provided buffer");
    const auto n = static_cast<size_t>(res);
    box->replySettled();
    if (!more) {
      self->armRecv(); // the receive ended (the buffers ran short for a moment): again
    }
    if (!self->reading_ || !self->stash_.empty()) {
      // Reading is disabled (kept for later; the receive stops), or older bytes wait to be
      // handed over (these go after them).
      self->stash_.append(data, n);
      ring.recycle(bid);
      if (!self->reading_) {
        if (box->recv_armed && !box->recv_cancelled) {
          box->recv_cancelled = true;
          ring.cancel(&box->recv_op);
        }
      } else {
        self->dispatcher_.deferCall(self->redeliver_);
      }
      return;
    }
    if (self->tls_) {
      self->tlsIngest(data, n); // fed (copied) first thing: the buffer may go back after
      ring.recycle(bid);
      return;
    }
    self->read_buf_.append(data, n);
    ring.recycle(bid);
    self->cb_->onData();
    return;
  }
  if (data != nullptr) {
    ring.recycle(bid);
  }
  if (res == -ENOBUFS || res == -ECANCELED) {
    // Out of buffers for a moment (they are back by the next submit), or cancelled because
    // reading was disabled (and maybe enabled again since).
    if (!more) {
      self->armRecv();
    }
    return;
  }
  // 0: the peer closed its side; < 0: the connection failed.
  const int err = res == 0 ? 0 : uv_translate_sys_error(-res);
  if (!self->reading_ || !self->stash_.empty()) {
    // After the bytes kept aside, once reading is enabled: as the kernel would have told it.
    self->pending_close_ = err;
    if (self->reading_) {
      self->dispatcher_.deferCall(self->redeliver_);
    }
    return;
  }
  self->reading_ = false;
  self->cb_->onRemoteClose(err);
}

void Connection::redeliver() {
  if (box_ == nullptr || !reading_) {
    return;
  }
  if (stash_.empty()) {
    if (pending_close_ != kNoPendingClose) {
      const int err = pending_close_;
      pending_close_ = kNoPendingClose;
      reading_ = false;
      cb_->onRemoteClose(err);
    }
    return;
  }
  if (pending_close_ != kNoPendingClose) {
    dispatcher_.deferCall(redeliver_); // the end comes after these bytes
  }
  if (tls_) {
    std::string_view data = stash_.view();
    stash_.clear();
    tlsIngest(data.data(), data.size()); // clear() keeps the bytes: fed before reuse
    return;
  }
  read_buf_.append(stash_.view());
  stash_.release();
  cb_->onData();
}

void Connection::onRingSend(event::RingOp* op, int32_t res, uint32_t) {
  Box* box = static_cast<Box::Op*>(op)->box;
  box->ops--;
  if (res > 0) {
    box->inflight.drain(static_cast<size_t>(res));
  }
  Connection* self = box->owner;
  if (self != nullptr && res > 0 && !box->inflight.empty()) {
    box->ops++; // a short send: the rest
    box->ring->send(box->fd, box->inflight.readPtr(), box->inflight.readable(), &box->send_op);
    return;
  }
  box->writing = false;
  box->inflight.release();
  if (self == nullptr) {
    box->closeIfDone();
    return;
  }
  if (res <= 0) {
    self->write_buf_.clear();
    self->wire().clear();
    self->cb_->onRemoteClose(res == 0 ? UV_EPIPE : uv_translate_sys_error(-res));
    return;
  }
  self->flush();
}

// ---------------------------------------------------------------------------------------------

void Connection::readEnable(bool enable) {
  if (box_ == nullptr || enable == reading_) {
    return;
  }
  reading_ = enable;
  if (box_->ring != nullptr) {
    // Disabling is lazy: bytes that still come are kept aside and stop the receive then.
    if (enable) {
      armRecv();
      if (!stash_.empty() || pending_close_ != kNoPendingClose) {
        dispatcher_.deferCall(redeliver_);
      }
    }
    return;
  }
  auto* s = reinterpret_cast<uv_stream_t*>(&box_->tcp);
  if (enable) {
    uv_read_start(s, &Connection::onAlloc, &Connection::onRead);
  } else {
    uv_read_stop(s);
  }
}

size_t Connection::pendingBytes() const {
  return write_buf_.readable() + (tls_ ? tls_->out.readable() : 0) +
         (box_ != nullptr ? box_->inflight.readable() : 0);
}

void Connection::flush() {
  if (box_ == nullptr || !connected_ || box_->writing) {
    return;
  }
  if (tls_) {
    tlsEncrypt();
  }
  Buffer& out = wire();
  if (!out.empty() && box_->ring != nullptr) {
    // Through the ring: submitted with the rest of this loop turn's operations.
    Box* box = box_;
    box->inflight.clear();
    box->inflight.swap(out);
    box->writing = true;
    box->ops++;
    if (box->requests && !box->reply_due) {
      box->reply_due = true; // counted now: the wait that submits this send is the one to size
      box->dispatcher->addRepliesDue(1);
    } else if (!box->requests) {
      box->dispatcher->addAnswerQueued();
    }
    box->ring->send(box->fd, box->inflight.readPtr(), box->inflight.readable(), &box->send_op);
  } else if (!out.empty()) {
    // send() rather than uv_try_write()'s write(): a socket call skips the VFS layer (file
    // position lock, fsnotify), ~90 ns per call here. libuv has no write queued (writing is
    // false), so bytes cannot overtake each other.
    ssize_t n;
    do {
      n = ::send(box_->fd, out.readPtr(), out.readable(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      out.drain(static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      int err = uv_translate_sys_error(errno);
      out.clear();
      write_buf_.clear();
      cb_->onRemoteClose(err);
      return;
    }
    if (!out.empty()) {
      startWrite();
    }
  }
  size_t pending = pendingBytes();
  if (pending > kHighWatermark) {
    above_high_ = true;
  } else if (above_high_ && pending < kLowWatermark) {
    above_high_ = false;
    cb_->onWriteDrained();
    if (box_ == nullptr) {
      return;
    }
  }
  if (!box_->writing && write_buf_.empty() && wire().empty()) {
    if (close_after_flush_) {
      close();
      cb_->onLocalClose();
      return;
    }
    cb_->onWriteFlushed();
  }
}

void Connection::startWrite() {
  // Hand the buffer to libuv; new bytes keep accumulating in write_buf_ meanwhile.
  Box* box = box_;
  box->inflight.clear();
  box->inflight.swap(wire());
  box->writing = true;
  box->wreq.data = box;
  uv_buf_t b = uv_buf_init(const_cast<char*>(box->inflight.readPtr()),
                           static_cast<unsigned int>(box->inflight.readable()));
  int rc =
      uv_write(&box->wreq, reinterpret_cast<uv_stream_t*>(&box->tcp), &b, 1, &Connection::onWrite);
  if (rc != 0) {
    box->writing = false;
    box->inflight.clear();
  }
}

void Connection::onWrite(uv_write_t* req, int status) {
  Box* box = static_cast<Box*>(req->data);
  box->writing = false;
  box->inflight.release();
  Connection* self = box->owner;
  if (self == nullptr) {
    return;
  }
  if (status < 0) {
    self->write_buf_.clear();
    self->wire().clear();
    self->cb_->onRemoteClose(status);
    return;
  }
  self->flush();
}

void Connection::closeAfterFlush() {
  if (box_ == nullptr) {
    return;
  }
  if (tls_ && !tls_->session.handshaken()) {
    close(); // nothing the peer could read was sent yet
    cb_->onLocalClose();
    return;
  }
  if (tls_ && !tls_->session.shutdownSent()) {
    // Whatever the owner queued goes first, then close_notify.
    tlsEncrypt();
    tls_->session.shutdown();
    tlsEncrypt();
  }
  if (!box_->writing && write_buf_.empty() && wire().empty()) {
    close();
    cb_->onLocalClose();
    return;
  }
  close_after_flush_ = true;
  readEnable(false);
  flush();
}

void Connection::close(bool reset) {
  if (box_ == nullptr) {
    return;
  }
  Box* box = box_;
  box_ = nullptr;
  box->owner = nullptr;
  reading_ = false;
  connected_ = false;
  box->reset = reset;
  box->replySettled();
  if (box->ops > 0) {
    // The kernel still reads or writes the box's memory: cancel, close when the last completes.
    box->closing = true;
    box->ring->cancelFd(box->fd);
    return;
  }
  closeHandle(box);
}

void Connection::closeHandle(Box* box) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&box->tcp)) != 0) {
    // Dispatcher::closeAll() got there first: its walk closed every open handle, this one while
    // the kernel still held an operation of the box, and that closeAll()'s loop finished the
    // close before this completion was reaped by the next. libuv no longer refers to it.
    delete box;
    return;
  }
  auto del = [](uv_handle_t* h) { delete static_cast<Box*>(h->data); };
  if (box->reset && uv_tcp_close_reset(&box->tcp, del) == 0) {
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&box->tcp), del);
}

} // namespace sluice::network
