#include "core/config/bench_input.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include <fmt/format.h>

namespace sluice::config {

namespace {

using json = nlohmann::json;

// A value as the config errors show it (docs/config-errors.md): its JSON, cut at 60 characters.
std::string describe(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

void collectClusters(const json& v, std::set<std::string>& out) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() == "cluster" && it.value().is_string()) {
        out.insert(it.value().get<std::string>());
      }
      collectClusters(it.value(), out);
    }
  } else if (v.is_array()) {
    for (const json& e : v) {
      collectClusters(e, out);
    }
  }
}

bool parseRequest(const json& j, const std::string& where, BenchRequest& r, std::string& error) {
  if (!j.is_object()) {
    error = where + ": expected a JSON object";
    return false;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "method" || k == "path" || k == "body") {
      if (!v.is_string()) {
        error = fmt::format("{}: /{}: expected a string, got {}", where, k, describe(v));
        return false;
      }
      (k == "method" ? r.method : k == "path" ? r.path : r.body) = v.get<std::string>();
    } else if (k == "headers" && v.is_object()) {
      for (auto h = v.begin(); h != v.end(); ++h) {
        if (!h.value().is_string()) {
          error = fmt::format("{}: /headers/{}: expected a string, got {}", where, h.key(),
                              describe(h.value()));
          return false;
        }
        r.headers.emplace_back(h.key(), h.value().get<std::string>());
      }
    } else if (k == "headers" && v.is_array()) {
      for (size_t i = 0; i < v.size(); i++) {
        const json& h = v[i];
        if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) {
          error = fmt::format("{}: /headers/{}: expected [name, value]", where, i);
          return false;
        }
        r.headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
      }
    } else if (k == "headers") {
      error = where + ": /headers: expected an object or an array of [name, value]";
      return false;
    } else {
      error = fmt::format("{}: /{}: unknown key", where, k);
      return false;
    }
  }
  if (r.method.empty() || r.path.empty() || r.path[0] != '/') {
    error = where + ": a request needs a method and a path starting with \"/\"";
    return false;
  }
  return true;
}

} // namespace

bool loadBenchCorpus(const std::string& path, std::vector<BenchRequest>& out, std::string& error) {
  std::ifstream f(path);
  if (!f) {
    error = fmt::format("--requests: cannot read \"{}\"", path);
    return false;
  }
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) {
    n++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    json j = json::parse(line, nullptr, false);
    std::string where = fmt::format("{}:{}", path, n);
    if (j.is_discarded()) {
      error = where + ": expected a JSON object";
      return false;
    }
    BenchRequest r;
    if (!parseRequest(j, where, r, error)) {
      return false;
    }
    out.push_back(std::move(r));
  }
  if (out.empty()) {
    error = fmt::format("--requests: \"{}\" holds no requests", path);
    return false;
  }
  return true;
}

bool benchDocuments(const std::string& type, const std::string& module,
                    const std::string& filter_config, bool with_router, BenchDocuments& out,
                    std::string& error) {
  json cfg = json::parse(filter_config, nullptr, false);
  if (cfg.is_discarded()) {
    error = "--config: not valid JSON";
    return false;
  }
  std::set<std::string> clusters;
  collectClusters(cfg, clusters);
  json catch_all = {
      {"type", "router"},
      {"name", "bench_router"},
      {"config",
       {{"virtual_hosts",
         json::array({{{"name", "all"},
                       {"domains", json::array({"*"})},
                       {"routes", json::array({{{"match", {{"prefix", "/"}}},
                                                {"cluster", "bench_upstream"}}})}}})}}}};
  json entry = {{"type", type}, {"config", cfg}};
  if (!module.empty()) {
    entry["module"] = module;
  }
  json chain_filters = json::array({entry});
  json base_filters = json::array();
  if (with_router) {
    clusters.insert("bench_upstream");
    if (type != "router" || !module.empty()) {
      chain_filters.push_back(catch_all);
    }
    base_filters.push_back(catch_all);
  }
  auto document = [&](const json& filters) {
    json doc = {
        {"listeners",
         json::array({{{"name", "bench"}, {"address", "127.0.0.1:0"}, {"filters", filters}}})},
        {"clusters", json::array()}};
    for (const std::string& c : clusters) {
      doc["clusters"].push_back(
          {{"name", c}, {"endpoints", json::array({{{"address", "127.0.0.1:9"}}})}});
    }
    return doc.dump();
  };
  out.chain = document(chain_filters);
  // Without a router the baseline has no filter: the loader wants one, so the caller clears
  // the chain's filter list instead.
  out.baseline = with_router ? document(base_filters) : std::string();
  return true;
}

} // namespace sluice::config
