// Found by the config fuzz target (test/fuzz/corpus/config/): documents that nlohmann/json
// refuses with something other than a syntax error must be config errors, not a crash of
// `sluice validate` or of a running proxy on reload.

#include "core/config/config.h"

#include <catch2/catch.hpp>

namespace sluice::config {
namespace {

TEST_CASE("parseConfig: a number out of range is a config error, not a crash", "[config]") {
  LoadResult r = parseConfig(R"({"workers": 1, "shutdown": {"drain_ms": 1e400}})", "/tmp");
  REQUIRE(r.config == nullptr);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].pointer.empty());
  CHECK(r.errors[0].message.find("invalid JSON") != std::string::npos);
  CHECK(r.errors[0].message.find("1e400") != std::string::npos);
}

} // namespace
} // namespace sluice::config
