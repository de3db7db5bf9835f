#include "core/tls/context.h"

#include <catch2/catch.hpp>

namespace sluice::tls {

TEST_CASE("TLS certificate names: exact names and one-label wildcards", "[tls]") {
  CHECK(nameMatches("a.test", "a.test"));
  CHECK_FALSE(nameMatches("a.test", "b.test"));
  CHECK(nameMatches("*.b.test", "x.b.test"));
  CHECK_FALSE(nameMatches("*.b.test", "b.test"));     // the wildcard needs a label
  CHECK_FALSE(nameMatches("*.b.test", "y.x.b.test")); // and stands for exactly one
  CHECK_FALSE(nameMatches("*.b.test", ".b.test"));
  CHECK_FALSE(nameMatches("*", "a"));
}

TEST_CASE("TLS contexts report missing files by pointer", "[tls]") {
  std::vector<config::ConfigError> errors;
  config::ListenerTls l;
  l.certificates.push_back({"/nonexistent/cert.pem", "/nonexistent/key.pem"});
  CHECK(ServerContext::create(l, "/listeners/0/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/0/tls/certificates/0/cert_file");
  errors.clear();
  config::ListenerTls none;
  CHECK(ServerContext::create(none, "/listeners/1/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/1/tls/certificates");
  errors.clear();
  config::ClusterTls c;
  c.ca_file = "/nonexistent/ca.pem";
  CHECK(ClientContext::create(c, "/clusters/0/tls", errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/clusters/0/tls/ca_file");
  errors.clear();
  c.verify = false;
  c.ca_file.clear();
  CHECK(ClientContext::create(c, "/clusters/0/tls", errors) != nullptr);
  CHECK(errors.empty());
}

} // namespace sluice::tls
