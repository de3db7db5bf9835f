#include "core/tls/session.h"

#include "core/tls/internal/error.h"

#include <algorithm>
#include <climits>

#include <openssl/ssl.h>

namespace sluice::tls {

namespace {

int clampInt(size_t n) {
  return static_cast<int>(std::min<size_t>(n, INT_MAX));
}

} // namespace

Session::~Session() {
  SSL_free(ssl_);
}

void Session::attach(SSL* ssl, std::shared_ptr<const void> keep) {
  ssl_ = ssl;
  keep_ = std::move(keep);
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio_, wbio_);
}

void Session::feed(const char* data, size_t len) {
  BIO_write(rbio_, data, clampInt(len));
}

Session::Io Session::handshake() {
  if (handshaken_) {
    return Io::Ok;
  }
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshaken_ = true;
    return Io::Ok;
  }
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    return Io::WantMore;
  }
  return Io::Failed;
}

Session::Io Session::read(char* p, size_t cap, size_t* n) {
  *n = 0;
  int r = SSL_read(ssl_, p, clampInt(cap));
  if (r > 0) {
    *n = static_cast<size_t>(r);
    return Io::Ok;
  }
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) {
    return Io::WantMore;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    return Io::Closed;
  }
  return Io::Failed;
}

size_t Session::write(const char* p, size_t len) {
  if (!handshaken_ || shutdown_sent_ || len == 0) {
    return 0;
  }
  int n = SSL_write(ssl_, p, clampInt(len));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void Session::shutdown() {
  SSL_shutdown(ssl_);
  shutdown_sent_ = true;
}

size_t Session::pendingOutput() const {
  return BIO_pending(wbio_);
}

size_t Session::takeOutput(char* p, size_t cap) {
  int n = BIO_read(wbio_, p, clampInt(cap));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

std::string Session::lastError() {
  return internal::takeError("peer closed or sent garbage");
}

} // namespace sluice::tls
