// What a reload changed: listeners, clusters and router virtual hosts, compared by name.

#include "core/config/config_diff.h"

#include <catch2/catch.hpp>

namespace sluice::config {
namespace {

Config doc(std::string raw) {
  Config c;
  c.raw_json = std::move(raw);
  return c;
}

using V = std::vector<std::string>;

TEST_CASE("diffConfigs: listeners, clusters and routes added, removed, changed", "[config]") {
  Config a = doc(R"({"listeners": [
      {"name": "web", "address": "127.0.0.1:80", "filters": [{"type": "router", "config":
        {"virtual_hosts": [{"name": "api", "routes": [1]}, {"name": "old", "routes": []}]}}]},
      {"name": "gone", "address": "127.0.0.1:81"}],
    "clusters": [{"name": "a", "endpoints": [1]}, {"name": "b"}, {"name": "same"}]})");
  Config b = doc(R"({"listeners": [
      {"name": "web", "address": "127.0.0.1:80", "filters": [{"type": "router", "config":
        {"virtual_hosts": [{"name": "api", "routes": [2]}, {"name": "new", "routes": []}]}}]},
      {"name": "more", "address": "127.0.0.1:82", "filters": [{"type": "router", "name": "r2",
        "config": {"virtual_hosts": [{"routes": []}]}}]}],
    "clusters": [{"name": "a", "endpoints": [2]}, {"name": "c"}, {"name": "same"}]})");
  ConfigDiff d = diffConfigs(a, b);
  // A route edit is not a change of the listener that holds the router.
  CHECK(d.listeners.added == V{"more"});
  CHECK(d.listeners.removed == V{"gone"});
  CHECK(d.listeners.changed.empty());
  CHECK(d.clusters.added == V{"c"});
  CHECK(d.clusters.removed == V{"b"});
  CHECK(d.clusters.changed == V{"a"});
  CHECK(d.routes.added == V{"web/new", "more/r2/#0"});
  CHECK(d.routes.removed == V{"web/old"});
  CHECK(d.routes.changed == V{"web/api"});
  CHECK(d.summary() == "listeners +more -gone; clusters +c -b ~a; "
                       "routes +web/new +more/r2/#0 -web/old ~web/api");
  CHECK(
      d.toJson() ==
      R"({"clusters":{"added":["c"],"changed":["a"],"removed":["b"]},)"
      R"("listeners":{"added":["more"],"changed":[],"removed":["gone"]},)"
      R"("restart_required":[],)"
      R"("routes":{"added":["web/new","more/r2/#0"],"changed":["web/api"],"removed":["web/old"]},)"
      R"("settings":[]})");
}

TEST_CASE("diffConfigs: process settings compared on their loaded values", "[config]") {
  Config a = doc(R"({"listeners": []})");
  Config b = a; // the same text: a secret read from a file may still differ
  b.admin.api_key = "rotated";
  b.workers = 4;
  b.shutdown.drain_ms = 1;
  b.overload.max_connections = 10;
  ConfigDiff d = diffConfigs(a, b);
  CHECK(d.settings ==
        V{"/workers", "/admin/api_key", "/shutdown/drain_ms", "/overload/max_connections"});
  CHECK_FALSE(d.empty());
  d.restart_required = {"/workers"};
  CHECK(d.summary() == "settings ~/workers ~/admin/api_key ~/shutdown/drain_ms "
                       "~/overload/max_connections; restart required: /workers");
  CHECK(d.toJson().find("rotated") == std::string::npos);
  // The first config (from nothing) lists no settings.
  CHECK(diffConfigs(Config{}, b).settings.empty());
}

TEST_CASE("diffConfigs: a listener edit outside its routes is a change", "[config]") {
  Config a = doc(R"({"listeners": [{"name": "web", "address": "127.0.0.1:80"}]})");
  Config b = doc(R"({"listeners": [{"name": "web", "address": "127.0.0.1:8080"}]})");
  ConfigDiff d = diffConfigs(a, b);
  CHECK(d.listeners.changed == V{"web"});
  CHECK(diffConfigs(a, a).empty());
  CHECK(diffConfigs(a, a).summary() == "no changes");
}

TEST_CASE("diffConfigs: from nothing everything is added; bad documents count as empty",
          "[config]") {
  Config b = doc(R"({"listeners": [{"name": "web"}], "clusters": [{"name": "a"}]})");
  ConfigDiff d = diffConfigs(Config{}, b);
  CHECK(d.listeners.added == V{"web"});
  CHECK(d.clusters.added == V{"a"});
  CHECK(diffConfigs(doc("{not json"), doc("[1]")).empty());
}

} // namespace
} // namespace sluice::config
