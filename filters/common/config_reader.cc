#include "filters/common/config_reader.h"

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sluice::filters::common {

std::string ConfigReader::describe(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string ConfigReader::lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

bool ConfigReader::parse(sluice_str_t text, Json& out) {
  std::string_view t(text.ptr == nullptr ? "" : text.ptr, text.ptr == nullptr ? 0 : text.len);
  if (t.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    out = Json::object();
    return true;
  }
  out = Json::parse(t, nullptr, false);
  if (out.is_discarded()) {
    error("", "the filter config is not valid JSON");
    return false;
  }
  return true;
}

void ConfigReader::error(const std::string& pointer, std::string message) {
  errors_.push_back({pointer, std::move(message)});
}

bool ConfigReader::report(const sluice_host_t* host, sluice_config_ctx_t* cfg) const {
  for (const ConfigError& e : errors_) {
    host->sluice_host_config_error(cfg, sluice_str_t{e.pointer.data(), e.pointer.size()},
                                   sluice_str_t{e.message.data(), e.message.size()});
  }
  return errors_.empty();
}

bool ConfigReader::object(const Json& v, const std::string& ptr,
                          std::initializer_list<const char*> keys) {
  if (!v.is_object()) {
    error(ptr, "expected an object, got " + describe(v));
    return false;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; })) {
      error(sdk::json::pointerTo(ptr, it.key()), "unknown key \"" + it.key() + "\"");
    }
  }
  return true;
}

const Json* ConfigReader::member(const Json& o, const std::string& ptr, const char* key,
                                 bool required) {
  auto it = o.find(key);
  if (it != o.end()) {
    return &*it;
  }
  if (required) {
    error(ptr + "/" + key, "required");
  }
  return nullptr;
}

bool ConfigReader::str(const Json& o, const std::string& ptr, const char* key, std::string& out,
                       bool required, bool non_empty) {
  const Json* it = member(o, ptr, key, required);
  if (it == nullptr) {
    return false;
  }
  // docs/config-errors.md: a wrong type reads "expected a string, got 42"; only an empty string
  // where one is required reads "expected a non-empty string, got \"\"".
  if (!it->is_string()) {
    error(ptr + "/" + key, "expected a string, got " + describe(*it));
    return false;
  }
  if (non_empty && it->get_ref<const std::string&>().empty()) {
    error(ptr + "/" + key, "expected a non-empty string, got \"\"");
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool ConfigReader::boolean(const Json& o, const std::string& ptr, const char* key, bool& out) {
  const Json* it = member(o, ptr, key, false);
  if (it == nullptr) {
    return false;
  }
  if (!it->is_boolean()) {
    error(ptr + "/" + key, "expected true or false, got " + describe(*it));
    return false;
  }
  out = it->get<bool>();
  return true;
}

bool ConfigReader::uint(const Json& o, const std::string& ptr, const char* key, uint64_t& out,
                        uint64_t min, uint64_t max, bool required) {
  const Json* it = member(o, ptr, key, required);
  if (it == nullptr) {
    return false;
  }
  if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0) ||
      it->get<uint64_t>() < min || it->get<uint64_t>() > max) {
    error(ptr + "/" + key, "expected an integer " + std::to_string(min) + ".." +
                               std::to_string(max) + ", got " + describe(*it));
    return false;
  }
  out = it->get<uint64_t>();
  return true;
}

bool ConfigReader::uint(const Json& o, const std::string& ptr, const char* key, uint32_t& out,
                        uint32_t min, uint32_t max, bool required) {
  uint64_t v = 0;
  if (!uint(o, ptr, key, v, min, max, required)) {
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

bool ConfigReader::number(const Json& o, const std::string& ptr, const char* key, double& out,
                          double min, double max, bool required) {
  const Json* it = member(o, ptr, key, required);
  if (it == nullptr) {
    return false;
  }
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < min ||
      it->get<double>() > max) {
    // docs/config-errors.md: "expected a number 0..1", the bounds as the SDK prints them (%g).
    char range[64];
    std::snprintf(range, sizeof range, "%g..%g", min, max);
    error(ptr + "/" + key, std::string("expected a number ") + range + ", got " + describe(*it));
    return false;
  }
  out = it->get<double>();
  return true;
}

const Json* ConfigReader::array(const Json& o, const std::string& ptr, const char* key,
                                bool required, bool non_empty) {
  const Json* it = member(o, ptr, key, required);
  if (it == nullptr) {
    return nullptr;
  }
  if (!it->is_array()) {
    error(ptr + "/" + key, "expected an array, got " + describe(*it));
    return nullptr;
  }
  if (non_empty && it->empty()) {
    error(ptr + "/" + key, "expected a non-empty array, got []");
    return nullptr;
  }
  return it;
}

bool ConfigReader::strings(const Json& o, const std::string& ptr, const char* key,
                           std::vector<std::string>& out, bool required, bool non_empty) {
  const Json* a = array(o, ptr, key, required, non_empty);
  if (a == nullptr) {
    return false;
  }
  bool good = true;
  for (size_t i = 0; i < a->size(); i++) {
    const Json& v = (*a)[i];
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      error(ptr + "/" + key + "/" + std::to_string(i),
            v.is_string() ? "expected a non-empty string, got \"\""
                          : "expected a string, got " + describe(v));
      good = false;
      continue;
    }
    out.push_back(v.get<std::string>());
  }
  return good;
}

bool ConfigReader::isToken(std::string_view s) {
  return sdk::ConfigReader::isToken(s);
}

} // namespace sluice::filters::common
