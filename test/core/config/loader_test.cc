// core/config's loader: edge cases of the JSON -> typed config step (pointers, escaping, every
// error collected, TLS keys).

#include "core/config/config.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include <unistd.h>

namespace sluice::config {
namespace {

const char* kFilters = R"("filters": [{"type": "router", "config": {}}])";

std::string doc(const std::string& listener_extra, const std::string& cluster_extra = "") {
  return std::string(R"({"listeners": [{"name": "web", "address": "127.0.0.1:0", )") + kFilters +
         listener_extra +
         R"(}], "clusters": [{"name": "app", "endpoints": [{"address": )"
         R"("127.0.0.1:1"}])" +
         cluster_extra + "}]}";
}

bool hasError(const LoadResult& r, const std::string& pointer, const std::string& text = "") {
  for (const auto& e : r.errors) {
    if (e.pointer == pointer && e.message.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string tempFile() {
  std::string path = "/tmp/sluice-loader-test-" + std::to_string(::getpid()) + ".pem";
  std::ofstream(path) << "not checked by the loader\n";
  return path;
}

TEST_CASE("Loader: a minimal config loads with defaults", "[config]") {
  LoadResult r = parseConfig(doc(""), "/tmp");
  REQUIRE(r.errors.empty());
  REQUIRE(r.config != nullptr);
  REQUIRE(r.config->listeners.size() == 1);
  CHECK(r.config->listeners[0].pointer == "/listeners/0");
  CHECK_FALSE(r.config->listeners[0].tls.has_value());
  REQUIRE(r.config->clusters.size() == 1);
  CHECK(r.config->clusters[0].endpoints[0].address.is_ip);
  CHECK(r.config->clusters[0].endpoints[0].address.port == 1);
}

TEST_CASE("Loader: every error is collected, each at its own pointer", "[config]") {
  LoadResult r = parseConfig(
      doc(R"(, "bogus": 1, "limits": {"idle_timeout_ms": "x"})", R"(, "lb_policy": "fastest")"),
      "/tmp");
  CHECK(r.config == nullptr);
  CHECK(hasError(r, "/listeners/0/bogus", "unknown key"));
  CHECK(hasError(r, "/listeners/0/limits/idle_timeout_ms", "expected an integer"));
  CHECK(hasError(r, "/clusters/0/lb_policy",
                 "expected one of round_robin, least_request, random, ring_hash, maglev, got "
                 "\"fastest\""));
  CHECK(r.errors.size() == 3);
}

TEST_CASE("Loader: an unknown key's pointer is escaped (RFC 6901)", "[config]") {
  LoadResult r = parseConfig(doc(R"(, "a/b~c": 1)"), "/tmp");
  CHECK(hasError(r, "/listeners/0/a~1b~0c", "unknown key \"a/b~c\""));
}

TEST_CASE("Loader: required sections and wrong top-level types", "[config]") {
  CHECK(hasError(parseConfig("{}", "/tmp"), "/listeners", "required"));
  CHECK(hasError(parseConfig(R"({"listeners": {}})", "/tmp"), "/listeners", "expected an array"));
  LoadResult r = parseConfig("[1, 2]", "/tmp");
  CHECK(r.config == nullptr);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].pointer.empty());
  CHECK(hasError(parseConfig("{\"listeners\": [", "/tmp"), "", "invalid JSON"));
}

TEST_CASE("Loader: listener tls.alpn admits only http/1.1", "[config][tls]") {
  std::string pem = tempFile();
  auto tls = [&](const std::string& alpn) {
    return doc(R"(, "tls": {"certificates": [{"cert_file": ")" + pem + R"(", "key_file": ")" + pem +
               R"("}], "alpn": )" + alpn + "}");
  };
  LoadResult ok = parseConfig(tls(R"(["http/1.1"])"), "/tmp");
  CHECK(ok.errors.empty());
  REQUIRE(ok.config != nullptr);
  CHECK(ok.config->listeners[0].tls->alpn == std::vector<std::string>{"http/1.1"});
  CHECK(parseConfig(tls("[]"), "/tmp").errors.empty()); // the default: http/1.1
  LoadResult h2 = parseConfig(tls(R"(["http/1.1", "h2"])"), "/tmp");
  CHECK(h2.config == nullptr);
  CHECK(hasError(h2, "/listeners/0/tls/alpn/1", "HTTP/1.1 only"));
  CHECK(hasError(h2, "/listeners/0/tls/alpn/1", "\"h2\""));
  CHECK(hasError(parseConfig(tls(R"(["HTTP/1.1"])"), "/tmp"), "/listeners/0/tls/alpn/0"));
  CHECK(hasError(parseConfig(tls("[11]"), "/tmp"), "/listeners/0/tls/alpn/0", "a string"));
  std::remove(pem.c_str());
}

TEST_CASE("Loader: cluster tls defaults and endpoint hosts", "[config][tls]") {
  LoadResult r = parseConfig(doc("", R"(, "tls": {"verify": false})"), "/tmp");
  REQUIRE(r.errors.empty());
  const ClusterTls& t = *r.config->clusters[0].tls;
  CHECK(t.sni.empty()); // the endpoint's host is the name (core/tls)
  CHECK_FALSE(t.verify);
  LoadResult h = parseConfig(
      R"({"listeners": [{"name": "web", "address": "127.0.0.1:0", )" + std::string(kFilters) +
          R"(}], "clusters": [{"name": "app", "endpoints": [)"
          R"({"address": "api.internal:443"}, {"address": "[::1]:8443"}]}]})",
      "/tmp");
  REQUIRE(h.errors.empty());
  const auto& eps = h.config->clusters[0].endpoints;
  CHECK(eps[0].address.host == "api.internal");
  CHECK_FALSE(eps[0].address.is_ip);
  CHECK(eps[1].address.host == "::1");
  CHECK(eps[1].address.is_ip);
}

} // namespace
} // namespace sluice::config
