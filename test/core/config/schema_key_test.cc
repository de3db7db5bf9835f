// A top-level "$schema" (an editor's pointer to schema/sluice.schema.json) is accepted and
// ignored; it is the only "$" key, and it must be a string.

#include "core/config/config.h"

#include <catch2/catch.hpp>

namespace sluice::config {
namespace {

constexpr const char* kBody = R"("listeners": [{"name": "web", "address": "127.0.0.1:0",
    "filters": [{"type": "router"}]}])";

std::string doc(const std::string& head) {
  return "{" + head + kBody + "}";
}

TEST_CASE("parseConfig: a top-level $schema string is accepted", "[config]") {
  LoadResult r = parseConfig(doc(R"("$schema": "../schema/sluice.schema.json", )"), "/tmp");
  REQUIRE(r.errors.empty());
  CHECK(r.config->listeners.size() == 1);
}

TEST_CASE("parseConfig: $schema must be a string and other $ keys stay unknown", "[config]") {
  LoadResult r = parseConfig(doc(R"("$schema": 5, )"), "/tmp");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].toString() == "/$schema: expected a string, got 5");

  r = parseConfig(doc(R"("$id": "x", )"), "/tmp");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].toString() == "/$id: unknown key \"$id\"");

  r = parseConfig(R"({"listeners": [{"name": "web", "address": "127.0.0.1:0", "$schema": "x",
      "filters": [{"type": "router"}]}]})",
                  "/tmp");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].pointer == "/listeners/0/$schema");
}

} // namespace
} // namespace sluice::config
