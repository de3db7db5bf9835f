#pragma once

// The JSON inputs of `sluice bench-filter`: its request corpus (JSONL) and the configuration
// documents it runs one filter in. Kept here because this room is the one that reads JSON.

#include <string>
#include <utility>
#include <vector>

namespace sluice::config {

struct BenchRequest {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// One request per line: {"method", "path", "headers": {name: value} or [[name, value], ...],
// "body"}; blank lines are skipped. Errors name the file and line.
bool loadBenchCorpus(const std::string& path, std::vector<BenchRequest>& out, std::string& error);

struct BenchDocuments {
  std::string chain;    // one listener: the filter (then a catch-all router unless it is one)
  std::string baseline; // the same without the filter (a catch-all router, or no filter)
};

// `filter_config` is the filter's config as JSON text; `module` an absolute path or empty.
// Every cluster named under a "cluster" key of the filter's config exists (one endpoint that
// the synthetic upstream stands in for), plus "bench_upstream" for the catch-all router.
bool benchDocuments(const std::string& type, const std::string& module,
                    const std::string& filter_config, bool with_router, BenchDocuments& out,
                    std::string& error);

} // namespace sluice::config
