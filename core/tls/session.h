#pragma once

// One TLS connection's state with BoringSSL over memory BIOs, so that the libuv connection keeps
// doing the socket I/O: ciphertext read from the socket is fed in, plaintext comes out of read();
// plaintext given to write() becomes records taken out with takeOutput() for the socket.
//
// The BoringSSL types are only forward-declared: rooms below core/tls never see <openssl/...>.

#include <cstddef>
#include <memory>
#include <string>

struct ssl_st;
struct bio_st;

namespace sluice::tls {

class Session {
public:
  enum class Io {
    Ok,       // progress (handshake done; bytes read)
    WantMore, // needs more ciphertext from the peer
    Closed,   // the peer sent close_notify
    Failed,   // protocol error: lastError() says why
  };

  Session() = default;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // True once a context opened it (ServerContext::open, ClientContext::open).
  bool active() const { return ssl_ != nullptr; }
  bool handshaken() const { return handshaken_; }
  bool shutdownSent() const { return shutdown_sent_; }

  // Ciphertext from the peer.
  void feed(const char* data, size_t len);
  // Runs the handshake (a client's first call produces its ClientHello): Ok once done.
  Io handshake();
  // Decrypts into p[0, cap). Ok with *n > 0, or WantMore / Closed / Failed with *n == 0.
  Io read(char* p, size_t cap, size_t* n);
  // Encrypts plaintext once the handshake is done; returns the bytes consumed (0 before it).
  size_t write(const char* p, size_t len);
  // Sends close_notify (queued as output).
  void shutdown();
  // Ciphertext waiting for the socket, and taking up to `cap` bytes of it.
  size_t pendingOutput() const;
  size_t takeOutput(char* p, size_t cap);
  // The reason of the last failure, from BoringSSL's error queue (cleared by the call).
  std::string lastError();

private:
  friend class ServerContext;
  friend class ClientContext;
  // Takes ownership of `ssl`; `keep` holds the context its callbacks use.
  void attach(ssl_st* ssl, std::shared_ptr<const void> keep);

  ssl_st* ssl_ = nullptr;
  bio_st* rbio_ = nullptr; // ciphertext from the peer (owned by ssl_)
  bio_st* wbio_ = nullptr; // ciphertext for the peer (owned by ssl_)
  std::shared_ptr<const void> keep_;
  bool handshaken_ = false;
  bool shutdown_sent_ = false;
};

} // namespace sluice::tls
