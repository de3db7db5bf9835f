#include "core/network/tls.h"

#include <catch2/catch.hpp>

namespace sluice::network {

TEST_CASE("TLS certificate names: exact names and one-label wildcards", "[tls]") {
  CHECK(tlsNameMatches("a.test", "a.test"));
  CHECK_FALSE(tlsNameMatches("a.test", "b.test"));
  CHECK(tlsNameMatches("*.b.test", "x.b.test"));
  CHECK_FALSE(tlsNameMatches("*.b.test", "b.test"));     // the wildcard needs a label
  CHECK_FALSE(tlsNameMatches("*.b.test", "y.x.b.test")); // and stands for exactly one
  CHECK_FALSE(tlsNameMatches("*.b.test", ".b.test"));
  CHECK_FALSE(tlsNameMatches("*", "a"));
}

TEST_CASE("TLS contexts report missing files by pointer", "[tls]") {
  std::vector<config::ConfigError> errors;
  config::ListenerTls l;
  l.certificates.push_back({"/nonexistent/cert.pem", "/nonexistent/key.pem"});
  CHECK(TlsServerContext::create(l, "/listeners/0/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/0/tls/certificates/0/cert_file");
  errors.clear();
  config::ListenerTls none;
  CHECK(TlsServerContext::create(none, "/listeners/1/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/1/tls/certificates");
  errors.clear();
  config::ClusterTls c;
  c.ca_file = "/nonexistent/ca.pem";
  CHECK(TlsClientContext::create(c, "/clusters/0/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/clusters/0/tls/ca_file");
  errors.clear();
  c.verify = false;
  c.ca_file.clear();
  CHECK(TlsClientContext::create(c, "/clusters/0/tls", errors) != nullptr);
  CHECK(errors.empty());
}

} // namespace sluice::network
