#pragma once

// Config-time helpers of the C++ SDK: the config context (errors by JSON pointer, cluster
// lookups, path resolution, metric definitions) and a typed reader over sluice/sdk/json.hpp
// that reports every mistake as a config error and rejects unknown keys.
//
// Everything here runs on the MAIN thread inside sluice_on_config_new (see sluice/filter.h).

#include "sluice/filter.h"
#include "sluice/sdk/json.hpp"

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sdk {

inline sluice_str_t toStr(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}
inline std::string_view toView(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

// A metric defined at config time; recording is lock-free and allowed from any thread.
class Metric {
public:
  Metric() = default;
  Metric(const sluice_host_t* host, sluice_metric_id_t id) : host_(host), id_(id) {}
  bool valid() const { return host_ != nullptr && id_ != SLUICE_METRIC_INVALID; }
  void add(double delta = 1) const {
    if (valid()) {
      host_->sluice_host_metric_add(id_, delta);
    }
  }
  void set(double value) const {
    if (valid()) {
      host_->sluice_host_metric_set(id_, value);
    }
  }
  void observe(double value) const {
    if (valid()) {
      host_->sluice_host_metric_observe(id_, value);
    }
  }
  sluice_metric_id_t id() const { return id_; }

private:
  const sluice_host_t* host_ = nullptr;
  sluice_metric_id_t id_ = SLUICE_METRIC_INVALID;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// The host's view of the config being loaded. Valid only inside the config factory.
class ConfigContext {
public:
  ConfigContext(const sluice_host_t* host, sluice_config_ctx_t* ctx, std::string_view json)
      : host_(host), ctx_(ctx), json_(json) {}

  const sluice_host_t* host() const { return host_; }
  sluice_config_ctx_t* raw() const { return ctx_; }
  // The filter's "config" as JSON text (for filters that bring their own JSON library).
  std::string_view json() const { return json_; }

  // `pointer` is relative to the filter's config ("" for the config object itself).
  void error(std::string_view pointer, std::string_view message) {
    errors_++;
    host_->sluice_host_config_error(ctx_, toStr(pointer), toStr(message));
  }
  size_t errorCount() const { return errors_; }

  bool clusterExists(std::string_view name) const {
    return host_->sluice_host_config_cluster_exists(ctx_, toStr(name));
  }
  // The filter instance name ("name" in the config, default its type).
  std::string_view name() const { return toView(host_->sluice_host_config_name(ctx_)); }
  // A path from the config resolved against the config file's folder ("" if too long).
  std::string resolvePath(std::string_view path) const {
    std::string out(4096, '\0');
    size_t n = host_->sluice_host_config_resolve_path(ctx_, toStr(path), out.data(), out.size());
    out.resize(n);
    return out;
  }
  Metric counter(std::string_view name, std::string_view help, const Labels& labels = {}) {
    return define(SLUICE_METRIC_COUNTER, name, help, labels, nullptr, 0);
  }
  Metric gauge(std::string_view name, std::string_view help, const Labels& labels = {}) {
    return define(SLUICE_METRIC_GAUGE, name, help, labels, nullptr, 0);
  }
  // Empty `bounds`: the host's latency buckets (seconds).
  Metric histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                   const std::vector<double>& bounds = {}) {
    return define(SLUICE_METRIC_HISTOGRAM, name, help, labels,
                  bounds.empty() ? nullptr : bounds.data(), bounds.size());
  }

private:
  Metric define(sluice_metric_type_t type, std::string_view name, std::string_view help,
                const Labels& labels, const double* bounds, size_t bound_count) {
    std::vector<sluice_header_t> l;
    l.reserve(labels.size());
    for (const auto& [k, v] : labels) {
      l.push_back(sluice_header_t{toStr(k), toStr(v)});
    }
    sluice_metric_id_t id = host_->sluice_host_config_define_metric(
        ctx_, type, toStr(name), toStr(help), l.data(), l.size(), bounds, bound_count);
    if (id == SLUICE_METRIC_INVALID) {
      errors_++; // the host failed the config already
    }
    return Metric(host_, id);
  }

  const sluice_host_t* host_;
  sluice_config_ctx_t* ctx_;
  std::string_view json_;
  size_t errors_ = 0;
};

// Typed getters over a parsed config. Each getter returns false when the key is absent or
// wrong; a wrong value (or a missing required one) is reported to the host as a config error
// at its JSON pointer, e.g. "/rules/0/cluster: expected a string, got 42".
class ConfigReader {
public:
  explicit ConfigReader(ConfigContext& ctx) : ctx_(ctx) {}

  // Parses the config text; empty text is an empty object. False (error at "") if not JSON.
  bool parse(json::Value& out) {
    std::string_view text = ctx_.json();
    size_t i = 0;
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) {
      i++;
    }
    if (i == text.size()) {
      text = "{}";
    }
    std::string err;
    if (!json::parse(text, out, err)) {
      ctx_.error("", "config is not valid JSON: " + err);
      return false;
    }
    return true;
  }

  bool ok() const { return ctx_.errorCount() == 0; }
  void error(const std::string& pointer, const std::string& message) {
    ctx_.error(pointer, message);
  }

  // `v` must be an object whose keys are all in `keys` (each unknown key is an error).
  bool object(const json::Value& v, const std::string& ptr,
              std::initializer_list<std::string_view> keys) {
    if (!v.isObject()) {
      error(ptr, "expected an object, got " + v.describe());
      return false;
    }
    bool good = true;
    for (const auto& m : v.members()) {
      bool known = false;
      for (std::string_view k : keys) {
        known = known || k == m.first;
      }
      if (!known) {
        error(at(ptr, m.first), "unknown key");
        good = false;
      }
    }
    return good;
  }

  bool str(const json::Value& o, const std::string& ptr, std::string_view key, std::string& out,
           bool required = false, bool non_empty = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return false;
    }
    // A wrong type reads "expected a string, got 42"; only an empty string where one is
    // required reads "expected a non-empty string, got \"\"" (sluice's docs/config-errors.md).
    if (!v->isString()) {
      error(at(ptr, key), "expected a string, got " + v->describe());
      return false;
    }
    if (non_empty && v->asString().empty()) {
      error(at(ptr, key), "expected a non-empty string, got \"\"");
      return false;
    }
    out = v->asString();
    return true;
  }

  bool boolean(const json::Value& o, const std::string& ptr, std::string_view key, bool& out,
               bool required = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->isBool()) {
      error(at(ptr, key), "expected true or false, got " + v->describe());
      return false;
    }
    out = v->asBool();
    return true;
  }

  bool uint(const json::Value& o, const std::string& ptr, std::string_view key, uint64_t& out,
            uint64_t min, uint64_t max, bool required = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->isUnsigned() || v->asUint() < min || v->asUint() > max) {
      error(at(ptr, key), "expected an integer " + std::to_string(min) + ".." +
                              std::to_string(max) + ", got " + v->describe());
      return false;
    }
    out = v->asUint();
    return true;
  }

  bool number(const json::Value& o, const std::string& ptr, std::string_view key, double& out,
              double min, double max, bool required = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->isNumber() || v->asDouble() < min || v->asDouble() > max) {
      char range[64];
      std::snprintf(range, sizeof range, "%g..%g", min, max);
      error(at(ptr, key), std::string("expected a number ") + range + ", got " + v->describe());
      return false;
    }
    out = v->asDouble();
    return true;
  }

  // The array at `key`, or null when absent (error if required) or not an array (error).
  const json::Value* array(const json::Value& o, const std::string& ptr, std::string_view key,
                           bool required = false, bool non_empty = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return nullptr;
    }
    if (!v->isArray()) {
      error(at(ptr, key), "expected an array, got " + v->describe());
      return nullptr;
    }
    if (non_empty && v->items().empty()) {
      error(at(ptr, key), "expected a non-empty array, got []");
      return nullptr;
    }
    return v;
  }

  // An array of non-empty strings.
  bool strings(const json::Value& o, const std::string& ptr, std::string_view key,
               std::vector<std::string>& out, bool required = false, bool non_empty = false) {
    const json::Value* a = array(o, ptr, key, required, non_empty);
    if (a == nullptr) {
      return false;
    }
    bool good = true;
    out.clear();
    for (size_t i = 0; i < a->items().size(); i++) {
      const json::Value& v = a->items()[i];
      if (!v.isString() || v.asString().empty()) {
        error(at(ptr, key) + "/" + std::to_string(i),
              v.isString() ? "expected a non-empty string, got \"\""
                           : "expected a string, got " + v.describe());
        good = false;
        continue;
      }
      out.push_back(v.asString());
    }
    return good;
  }

  // An object whose members are all strings (e.g. a header-name -> value map).
  bool stringMap(const json::Value& o, const std::string& ptr, std::string_view key,
                 std::vector<std::pair<std::string, std::string>>& out, bool required = false) {
    const json::Value* v = member(o, ptr, key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->isObject()) {
      error(at(ptr, key), "expected an object, got " + v->describe());
      return false;
    }
    bool good = true;
    for (const auto& [k, val] : v->members()) {
      if (!val.isString()) {
        error(json::pointerTo(at(ptr, key), k), "expected a string, got " + val.describe());
        good = false;
        continue;
      }
      out.emplace_back(k, val.asString());
    }
    return good;
  }

  // An RFC 9110 token (header names, methods).
  static bool isToken(std::string_view s) {
    if (s.empty()) {
      return false;
    }
    for (char c : s) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  // The pointer to member `key` of the value at `ptr` (RFC 6901 escaping).
  static std::string at(const std::string& ptr, std::string_view key) {
    return json::pointerTo(ptr, key);
  }

private:
  const json::Value* member(const json::Value& o, const std::string& ptr, std::string_view key,
                            bool required) {
    if (!o.isObject()) {
      return nullptr; // object() reported it already
    }
    const json::Value* v = o.find(key);
    if (v == nullptr && required) {
      error(at(ptr, key), "is required");
    }
    return v;
  }

  ConfigContext& ctx_;
};

} // namespace sluice::sdk
