// The router's config (filters/router/config.cc): whole route-table documents, then a few
// lookups on every table that loads (virtual host by authority, first matching route), so a
// table that parses but is built wrong (index, regex ids, Hyperscan databases) is exercised.

#include "filters/router/config.h"

#include "filters/common/config_reader.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace router = sluice::filters::router;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Clusters named "backend..." exist; anything else is an unknown-cluster error.
  auto exists = [](std::string_view name) { return name.starts_with("backend"); };
  sluice::filters::common::ConfigReader reader;
  std::unique_ptr<router::RouteTable> table = router::RouteTable::parse(text, exists, reader);
  if (table != nullptr && !reader.ok()) {
    __builtin_trap(); // built and refused at once
  }
  if (table == nullptr) {
    if (reader.ok()) {
      __builtin_trap(); // a refusal always says why
    }
    return 0;
  }
  auto scratch = table->newScratch();
  static constexpr std::string_view kAuthorities[] = {"example.com", "API.Example.com:8080",
                                                      "a.b.c", "", "[::1]:80"};
  static constexpr std::string_view kPaths[] = {
      "/", "/api/v1/users?x=1", "/static/a.css", "/api", "", "/%2F/x"};
  auto header = [](std::string_view name, std::string_view* v) {
    if (name == "x-tenant" || name == "user-agent") {
      *v = "acme-1";
      return true;
    }
    return false;
  };
  size_t acc = 0;
  for (std::string_view a : kAuthorities) {
    const router::VirtualHost* vh = table->findVirtualHost(a);
    if (vh == nullptr) {
      continue;
    }
    for (std::string_view p : kPaths) {
      for (std::string_view m : {"GET", "POST"}) {
        const router::Route* r = table->match(*vh, m, p, header, *scratch);
        if (r != nullptr) {
          acc += r->name.size() + r->cluster.size();
        }
      }
    }
  }
  volatile size_t sink = acc;
  (void)sink;
  return 0;
}
