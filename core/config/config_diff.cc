#include "core/config/config_diff.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace sluice::config {

namespace {

using json = nlohmann::json;

// A named entry of the document and its content as compared.
using Entries = std::vector<std::pair<std::string, json>>;

json parseOrEmpty(const std::string& text) {
  if (text.empty()) {
    return json::object();
  }
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return doc.is_discarded() || !doc.is_object() ? json::object() : doc;
}

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) {
    return nullptr;
  }
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string stringOr(const json& obj, const char* key, std::string fallback) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::move(fallback);
}

// Listeners (with the routers' virtual hosts taken out), clusters, and the virtual hosts.
struct Parts {
  Entries listeners, clusters, routes;
};

// "#3": the name of an unnamed entry. Built by appending: GCC 12 warns (-Wrestrict, a false
// positive) on "#" + std::to_string(i) in optimised builds.
std::string indexName(size_t i) {
  std::string name = "#";
  name += std::to_string(i);
  return name;
}

Parts split(const json& doc) {
  Parts out;
  if (const json* cs = member(doc, "clusters"); cs != nullptr && cs->is_array()) {
    for (size_t i = 0; i < cs->size(); i++) {
      out.clusters.emplace_back(stringOr((*cs)[i], "name", indexName(i)), (*cs)[i]);
    }
  }
  const json* ls = member(doc, "listeners");
  if (ls == nullptr || !ls->is_array()) {
    return out;
  }
  for (size_t i = 0; i < ls->size(); i++) {
    json l = (*ls)[i];
    std::string lname = stringOr(l, "name", indexName(i));
    json* filters = l.is_object() && l.contains("filters") ? &l["filters"] : nullptr;
    if (filters != nullptr && filters->is_array()) {
      for (json& f : *filters) {
        if (stringOr(f, "type", "") != "router" || !f.contains("config") ||
            !f["config"].is_object() || !f["config"].contains("virtual_hosts")) {
          continue;
        }
        std::string fname = stringOr(f, "name", "router");
        std::string prefix = lname + "/" + (fname == "router" ? "" : fname + "/");
        const json& vhs = f["config"]["virtual_hosts"];
        if (vhs.is_array()) {
          for (size_t v = 0; v < vhs.size(); v++) {
            out.routes.emplace_back(prefix + stringOr(vhs[v], "name", indexName(v)), vhs[v]);
          }
        }
        f["config"].erase("virtual_hosts");
      }
    }
    out.listeners.emplace_back(std::move(lname), std::move(l));
  }
  return out;
}

const json* find(const Entries& entries, const std::string& name) {
  for (const auto& [n, v] : entries) {
    if (n == name) {
      return &v;
    }
  }
  return nullptr;
}

ChangeSet compare(const Entries& before, const Entries& after) {
  ChangeSet out;
  for (const auto& [name, v] : after) {
    const json* old = find(before, name);
    if (old == nullptr) {
      out.added.push_back(name);
    } else if (*old != v) {
      out.changed.push_back(name);
    }
  }
  for (const auto& [name, v] : before) {
    if (find(after, name) == nullptr) {
      out.removed.push_back(name);
    }
  }
  return out;
}

json toJsonSet(const ChangeSet& s) {
  return json{{"added", s.added}, {"removed", s.removed}, {"changed", s.changed}};
}

void appendSummary(std::string& out, const char* what, const ChangeSet& s) {
  if (s.empty()) {
    return;
  }
  if (!out.empty()) {
    out += "; ";
  }
  out += what;
  for (const auto& n : s.added) {
    out += " +" + n;
  }
  for (const auto& n : s.removed) {
    out += " -" + n;
  }
  for (const auto& n : s.changed) {
    out += " ~" + n;
  }
}

// The process settings, compared on their loaded values.
std::vector<std::string> diffSettings(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto cmp = [&out](const char* pointer, const auto& x, const auto& y) {
    if (x != y) {
      out.emplace_back(pointer);
    }
  };
  cmp("/workers", a.workers, b.workers);
  cmp("/admin/address", a.admin.enabled ? a.admin.address.text : std::string(),
      b.admin.enabled ? b.admin.address.text : std::string());
  cmp("/admin/api_key", a.admin.api_key, b.admin.api_key);
  cmp("/startup/wait_for_config_ms", a.startup.wait_for_config_ms, b.startup.wait_for_config_ms);
  cmp("/shutdown/pre_drain_ms", a.shutdown.pre_drain_ms, b.shutdown.pre_drain_ms);
  cmp("/shutdown/drain_ms", a.shutdown.drain_ms, b.shutdown.drain_ms);
  cmp("/shutdown/teardown_ms", a.shutdown.teardown_ms, b.shutdown.teardown_ms);
  cmp("/shutdown/grace_period_ms", a.shutdown.grace_period_ms, b.shutdown.grace_period_ms);
  cmp("/overload/max_connections", a.overload.max_connections, b.overload.max_connections);
  cmp("/overload/max_requests_per_worker", a.overload.max_requests_per_worker,
      b.overload.max_requests_per_worker);
  cmp("/overload/max_buffered_bytes_per_worker", a.overload.max_buffered_bytes_per_worker,
      b.overload.max_buffered_bytes_per_worker);
  return out;
}

void appendList(std::string& out, const char* what, const char* mark,
                const std::vector<std::string>& names) {
  if (names.empty()) {
    return;
  }
  if (!out.empty()) {
    out += "; ";
  }
  out += what;
  for (const auto& n : names) {
    out += mark + n;
  }
}

} // namespace

std::string ConfigDiff::toJson() const {
  json j = json::object();
  j["listeners"] = toJsonSet(listeners);
  j["clusters"] = toJsonSet(clusters);
  j["routes"] = toJsonSet(routes);
  j["settings"] = settings;
  j["restart_required"] = restart_required;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ConfigDiff::summary() const {
  std::string out;
  appendSummary(out, "listeners", listeners);
  appendSummary(out, "clusters", clusters);
  appendSummary(out, "routes", routes);
  appendList(out, "settings", " ~", settings);
  appendList(out, "restart required:", " ", restart_required);
  return out.empty() ? "no changes" : out;
}

ConfigDiff diffConfigs(const Config& before, const Config& after) {
  Parts a = split(parseOrEmpty(before.raw_json));
  Parts b = split(parseOrEmpty(after.raw_json));
  ConfigDiff d;
  d.listeners = compare(a.listeners, b.listeners);
  d.clusters = compare(a.clusters, b.clusters);
  d.routes = compare(a.routes, b.routes);
  if (!before.raw_json.empty()) {
    d.settings = diffSettings(before, after);
  }
  return d;
}

} // namespace sluice::config
