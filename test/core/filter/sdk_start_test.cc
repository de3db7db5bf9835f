// The C++ SDK's Config::onStart (C ABI 1.3 sluice_on_config_start) through the real snapshot
// build: `sluice validate` (CheckOnly) creates and destroys the config without starting it; a
// live load starts it once; a refusal fails the load at the filter's pointer.

#define SLUICE_MODULE_ENTRY_NAME sluice_test_sdk_start_init
#include "core/config/config.h"
#include "core/filter/builtin.h"
#include "core/filter/registry.h"
#include "core/filter/snapshot.h"
#include "sluice/sdk/filter.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

using namespace sluice;
namespace sdk = sluice::sdk;

namespace {

int g_created = 0;
int g_started = 0;
int g_destroyed = 0;

class StartFilter : public sdk::Filter {
public:
  explicit StartFilter(sdk::Stream s) : Filter(s) {}
  sluice_status_t onRequestHeaders(bool) override { return sdk::kContinue; }
};

class StartConfig {
public:
  static std::unique_ptr<StartConfig> create(sdk::ConfigContext& ctx) {
    auto c = std::make_unique<StartConfig>();
    sdk::ConfigReader r(ctx);
    sdk::json::Value root;
    if (!r.parse(root)) {
      return nullptr;
    }
    r.object(root, "", {"start"});
    r.str(root, "", "start", c->start);
    g_created++;
    return r.ok() ? std::move(c) : nullptr;
  }
  ~StartConfig() { g_destroyed++; }
  bool onStart() {
    g_started++;
    if (start == "throw") {
      throw std::runtime_error("cannot open the spool");
    }
    return start == "ok";
  }
  std::unique_ptr<StartFilter> newFilter(sdk::Stream s) const {
    return std::make_unique<StartFilter>(s);
  }

  std::string start = "ok";
};

// The same without onStart: nothing to start.
class PlainConfig {
public:
  static std::unique_ptr<PlainConfig> create(sdk::ConfigContext&) {
    return std::make_unique<PlainConfig>();
  }
  std::unique_ptr<StartFilter> newFilter(sdk::Stream s) const {
    return std::make_unique<StartFilter>(s);
  }
};

} // namespace

SLUICE_SDK_MODULE("sdk_start_test", sdk::filterType<StartConfig>("sdk_start_probe"))

namespace {

filter::BuildResult buildWith(const std::string& start, filter::BuildMode mode) {
  static bool registered = false;
  if (!registered) {
    static const filter::BuiltinModule mods[] = {{"sdk_start_test", sluice_test_sdk_start_init}};
    filter::Registry::global().addBuiltins(mods, 1);
    registered = true;
  }
  std::string doc =
      R"({"listeners":[{"name":"l","address":"127.0.0.1:0","filters":[)"
      R"({"type":"sdk_start_probe","config":{"start":")" +
      start + R"("}}]}],"clusters":[{"name":"c","endpoints":[{"address":"127.0.0.1:1"}]}]})";
  auto cfg = config::parseConfig(doc, "/tmp");
  REQUIRE(cfg.errors.empty());
  g_created = g_started = g_destroyed = 0;
  return filter::buildSnapshot(cfg.config, 1, nullptr, mode);
}

} // namespace

TEST_CASE("SDK onStart: validate checks the config without starting it", "[filter][sdk]") {
  filter::BuildResult r = buildWith("ok", filter::BuildMode::CheckOnly);
  CHECK(r.errors.empty());
  CHECK(r.snapshot == nullptr);
  CHECK(g_created == 1);
  CHECK(g_started == 0);
  CHECK(g_destroyed == 1);
}

TEST_CASE("SDK onStart: a live load starts the config once", "[filter][sdk]") {
  filter::BuildResult r = buildWith("ok", filter::BuildMode::Start);
  CHECK(r.errors.empty());
  REQUIRE(r.snapshot != nullptr);
  CHECK(g_created == 1);
  CHECK(g_started == 1);
  CHECK(g_destroyed == 0);
  r.snapshot.reset();
  CHECK(g_destroyed == 1);
}

TEST_CASE("SDK onStart: refusing or throwing fails the load at the filter's pointer",
          "[filter][sdk]") {
  auto start = GENERATE(as<std::string>{}, "no", "throw");
  filter::BuildResult r = buildWith(start, filter::BuildMode::Start);
  CHECK(r.snapshot == nullptr);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].pointer == "/listeners/0/filters/0/config");
  CHECK(r.errors[0].message.find("could not start") != std::string::npos);
  CHECK(g_started == 1);
  CHECK(g_destroyed == 1); // destroyed although it never went live
}

TEST_CASE("SDK onStart: the descriptor has the start hook only when the config defines it",
          "[filter][sdk]") {
  CHECK(sdk::filterType<StartConfig>("sdk_start_probe")->sluice_on_config_start != nullptr);
  CHECK(sdk::filterType<PlainConfig>("sdk_plain_probe")->sluice_on_config_start == nullptr);
}
