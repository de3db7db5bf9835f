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

Parts split(const json& doc) {
  Parts out;
  if (const json* cs = member(doc, "clusters"); cs != nullptr && cs->is_array()) {
    for (size_t i = 0; i < cs->size(); i++) {
      out.clusters.emplace_back(stringOr((*cs)[i], "name", "#" + std::to_string(i)), (*cs)[i]);
    }
  }
  const json* ls = member(doc, "listeners");
  if (ls == nullptr || !ls->is_array()) {
    return out;
  }
  for (size_t i = 0; i < ls->size(); i++) {
    json l = (*ls)[i];
    std::string lname = stringOr(l, "name", "#" + std::to_string(i));
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
            out.routes.emplace_back(prefix + stringOr(vhs[v], "name", "#" + std::to_string(v)),
                                    vhs[v]);
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

} // namespace

std::string ConfigDiff::toJson() const {
  json j = json::object();
  j["listeners"] = toJsonSet(listeners);
  j["clusters"] = toJsonSet(clusters);
  j["routes"] = toJsonSet(routes);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ConfigDiff::summary() const {
  std::string out;
  appendSummary(out, "listeners", listeners);
  appendSummary(out, "clusters", clusters);
  appendSummary(out, "routes", routes);
  return out.empty() ? "no changes" : out;
}

ConfigDiff diffConfigs(const Config& before, const Config& after) {
  Parts a = split(parseOrEmpty(before.raw_json));
  Parts b = split(parseOrEmpty(after.raw_json));
  ConfigDiff d;
  d.listeners = compare(a.listeners, b.listeners);
  d.clusters = compare(a.clusters, b.clusters);
  d.routes = compare(a.routes, b.routes);
  return d;
}

} // namespace sluice::config
