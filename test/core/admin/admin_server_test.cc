// core/admin: request routing, bearer-key auth and redaction through AdminServer::handle, with
// no socket (start() is never called).

#include "core/admin/admin_server.h"
#include "core/filter/builtin.h"
#include "core/filter/registry.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

namespace sluice::admin {
namespace {

filter::SnapshotPtr liveSnapshot() {
  static bool registered = false;
  if (!registered) {
    size_t n = 0;
    const filter::BuiltinModule* m = filter::builtinModules(&n);
    filter::Registry::global().addBuiltins(m, n);
    registered = true;
  }
  auto load = config::parseConfig(R"({
    "admin": {"address": "127.0.0.1:0", "api_key": "s3cret-admin-key"},
    "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
      {"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "cluster": "app"}]}]}}]}],
    "clusters": [{"name": "app", "endpoints": [{"address": "127.0.0.1:1"},
                                               {"address": "127.0.0.1:2"}]}]})",
                                  "/tmp");
  for (const auto& e : load.errors) {
    FAIL(e.toString());
  }
  auto built = filter::buildSnapshot(load.config, 1);
  for (const auto& e : built.errors) {
    FAIL(e.toString());
  }
  return built.snapshot;
}

struct Fixture {
  event::Dispatcher dispatcher;
  filter::SnapshotPtr snapshot;
  bool ready = false;
  int drains = 0;
  std::vector<std::pair<std::string, size_t>> drained;
  std::unique_ptr<AdminServer> server;

  explicit Fixture(std::string api_key = "s3cret-admin-key") {
    config::AdminConfig cfg;
    cfg.enabled = true;
    cfg.api_key = std::move(api_key);
    AdminHooks h;
    h.snapshot = [this] { return snapshot; };
    h.ready = [this] { return ready; };
    h.not_ready_reason = [] { return std::string("waiting for jwks idp"); };
    h.drain = [this] { drains++; };
    h.endpoint_drained = [this](const std::string& c, size_t i) { drained.emplace_back(c, i); };
    h.reload = [](const std::string*, ReloadDone done) { done(false, 0, {"not in this test"}); };
    h.listeners = [] { return std::vector<std::pair<std::string, std::string>>{}; };
    server = std::make_unique<AdminServer>(dispatcher, cfg, std::move(h));
  }
  AdminResponse call(std::string_view method, std::string_view target,
                     std::string_view auth = "Bearer s3cret-admin-key") {
    std::optional<AdminResponse> out;
    server->handle(method, target, auth, "", [&](AdminResponse r) { out = std::move(r); });
    REQUIRE(out.has_value());
    return *out;
  }
};

TEST_CASE("Admin: /healthz and /ready answer without the key", "[admin]") {
  Fixture f;
  CHECK(f.call("GET", "/healthz", "").status == 200);
  CHECK(f.call("POST", "/healthz", "").status == 405);
  AdminResponse r = f.call("GET", "/ready", "");
  CHECK(r.status == 503);
  CHECK(r.body == "not ready: waiting for jwks idp\n");
  f.ready = true;
  CHECK(f.call("HEAD", "/ready", "").status == 200);
  // Forced unhealthy (with the key) wins over the hook, until /healthcheck/ok.
  CHECK(f.call("GET", "/healthcheck/fail").status == 405);
  CHECK(f.call("POST", "/healthcheck/fail").status == 200);
  CHECK(f.server->forcedUnhealthy());
  r = f.call("GET", "/ready", "");
  CHECK(r.status == 503);
  CHECK(r.body.find("forced") != std::string::npos);
  CHECK(f.call("POST", "/healthcheck/ok").status == 200);
  CHECK(f.call("GET", "/ready", "").status == 200);
}

TEST_CASE("Admin: everything else needs the bearer key", "[admin]") {
  Fixture f;
  for (std::string_view auth : {"", "Bearer", "Bearer ", "Bearer wrong", "Basic s3cret-admin-key",
                                "Bearer s3cret-admin-key ", "Bearer s3cret-admin-ke"}) {
    INFO(auth);
    CHECK(f.call("GET", "/status", auth).status == 401);
    CHECK(f.call("GET", "/metrics", auth).status == 401);
    CHECK(f.call("POST", "/drain", auth).status == 401);
  }
  CHECK(f.drains == 0);
  // The scheme is case-insensitive (RFC 9110 §11.1); the key is not.
  CHECK(f.call("GET", "/status", "bearer s3cret-admin-key").status == 200);
  CHECK(f.call("GET", "/status", "Bearer S3CRET-ADMIN-KEY").status == 401);
  // A browser navigation to / gets the (data-free) page with its 401, which asks for the key.
  AdminResponse page = f.call("GET", "/", "");
  CHECK(page.status == 401);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
}

TEST_CASE("Admin: without an api_key nothing asks for one", "[admin]") {
  Fixture f("");
  CHECK(f.call("GET", "/status", "").status == 200);
  CHECK(f.call("GET", "/", "").status == 200);
}

TEST_CASE("Admin: routes check their method and unknown paths are 404", "[admin]") {
  Fixture f;
  CHECK(f.call("POST", "/metrics").status == 405);
  CHECK(f.call("GET", "/drain").status == 405);
  CHECK(f.call("GET", "/reload").status == 405);
  CHECK(f.call("POST", "/config").status == 405);
  CHECK(f.call("GET", "/nope").status == 404);
  AdminResponse m = f.call("GET", "/metrics");
  CHECK(m.status == 200);
  CHECK(m.content_type.find("version=0.0.4") != std::string::npos);
  CHECK(f.call("POST", "/drain").status == 200);
  CHECK(f.drains == 1);
}

TEST_CASE("Admin: config and clusters wait for a live config; the dump is redacted", "[admin]") {
  Fixture f;
  CHECK(f.call("GET", "/config_dump").status == 503);
  CHECK(f.call("GET", "/clusters").status == 503);
  f.snapshot = liveSnapshot();
  AdminResponse dump = f.call("GET", "/config_dump");
  CHECK(dump.status == 200);
  CHECK(dump.content_type == "application/json");
  CHECK(dump.body.find("\"app\"") != std::string::npos);
  CHECK(dump.body.find("s3cret-admin-key") == std::string::npos);
  AdminResponse clusters = f.call("GET", "/clusters");
  CHECK(clusters.status == 200);
  CHECK(clusters.body.find("127.0.0.1:2") != std::string::npos);
}

TEST_CASE("Admin: draining one endpoint by cluster and address", "[admin]") {
  Fixture f;
  f.snapshot = liveSnapshot();
  CHECK(f.call("GET", "/clusters/app/endpoints/127.0.0.1:2/drain").status == 405);
  CHECK(f.call("POST", "/clusters/nope/endpoints/127.0.0.1:2/drain").status == 404);
  CHECK(f.call("POST", "/clusters/app/endpoints/127.0.0.1:9/drain").status == 404);
  CHECK(f.call("POST", "/clusters/app/drain").status == 404);
  AdminResponse r = f.call("POST", "/clusters/app/endpoints/127.0.0.1%3A2/drain");
  CHECK(r.status == 200);
  CHECK(r.body.find("\"draining\": true") != std::string::npos);
  REQUIRE(f.drained.size() == 1);
  CHECK(f.drained[0] == std::make_pair(std::string("app"), size_t{1}));
  const auto& eps = f.snapshot->clusters[0]->endpoints();
  CHECK_FALSE(eps[0]->draining.load());
  CHECK(eps[1]->draining.load());
}

TEST_CASE("Admin: constantTimeEquals compares content and length", "[admin]") {
  CHECK(constantTimeEquals("abc", "abc"));
  CHECK(constantTimeEquals("", ""));
  CHECK_FALSE(constantTimeEquals("abc", "abd"));
  CHECK_FALSE(constantTimeEquals("abc", "ab"));
  CHECK_FALSE(constantTimeEquals("", "a"));
}

} // namespace
} // namespace sluice::admin
