#include "filters/access_log/config.h"

#include "sluice/sdk/json.hpp"

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <utility>

#include <fmt/format.h>

namespace sluice::filters::access_log {

namespace {

using Json = nlohmann::json;

// Config parsing is off the data path, but it still never throws: values are type-checked
// before each access and the text is parsed with exceptions off.
class Parser {
public:
  explicit Parser(std::vector<ConfigError>& errors) : errors_(errors) {}

  void error(std::string pointer, std::string message) {
    errors_.push_back(ConfigError{std::move(pointer), std::move(message)});
  }

  static std::string describe(const Json& v) {
    std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (s.size() > 64) {
      s.resize(61);
      s += "...";
    }
    return s;
  }

  // Reports every key of `object` not in `known`. False if `object` is not an object.
  bool object(const Json& object, const std::string& pointer,
              std::initializer_list<std::string_view> known) {
    if (!object.is_object()) {
      error(pointer, "expected an object, got " + describe(object));
      return false;
    }
    for (const auto& item : object.items()) {
      bool ok = false;
      for (std::string_view k : known) {
        ok = ok || item.key() == k;
      }
      if (!ok) {
        std::string expected;
        for (std::string_view k : known) {
          expected += expected.empty() ? "" : ", ";
          expected += k;
        }
        error(pointer + "/" + escapePointerToken(item.key()),
              fmt::format("unknown key \"{}\" (expected one of: {})", item.key(), expected));
      }
    }
    return true;
  }

  std::optional<uint64_t> integer(const Json& v, const std::string& pointer, uint64_t min,
                                  uint64_t max) {
    if (v.is_number_unsigned()) {
      const auto n = v.get<uint64_t>();
      if (n >= min && n <= max) {
        return n;
      }
    }
    error(pointer, fmt::format("expected an integer {}..{}, got {}", min, max, describe(v)));
    return std::nullopt;
  }

private:
  std::vector<ConfigError>& errors_;
};

void parseFormat(Parser& p, const Json& v, Config& config) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "json") {
      config.formatter = Formatter::json();
      return;
    }
    if (s == "combined") {
      config.formatter = Formatter::combined();
      return;
    }
  }
  if (!v.is_object()) {
    p.error("/format", "expected \"json\", \"combined\" or {\"template\": \"...\"}, got " +
                           Parser::describe(v));
    return;
  }
  p.object(v, "/format", {"template"});
  const auto t = v.find("template");
  if (t == v.end()) {
    p.error("/format/template", "missing: a format object needs a \"template\" string");
    return;
  }
  if (!t->is_string() || t->get_ref<const std::string&>().empty()) {
    p.error("/format/template", t->is_string() ? "expected a non-empty string, got \"\""
                                               : "expected a string, got " + Parser::describe(*t));
    return;
  }
  std::string message;
  auto segments = parseTemplate(t->get_ref<const std::string&>(), message);
  if (!segments) {
    p.error("/format/template", message);
    return;
  }
  config.formatter = Formatter::fromTemplate(std::move(*segments));
}

void parseWhen(Parser& p, const Json& v, When& when) {
  if (!p.object(v, "/when", {"status_min", "min_duration_ms", "sample"})) {
    return;
  }
  if (const auto it = v.find("status_min"); it != v.end()) {
    if (auto n = p.integer(*it, "/when/status_min", 100, 599)) {
      when.status_min = static_cast<uint32_t>(*n);
    }
  }
  if (const auto it = v.find("min_duration_ms"); it != v.end()) {
    if (auto n = p.integer(*it, "/when/min_duration_ms", 0, Config::kMaxMinDurationMs)) {
      when.min_duration_ms = *n;
    }
  }
  if (const auto it = v.find("sample"); it != v.end()) {
    if (it->is_number() && it->get<double>() >= 0.0 && it->get<double>() <= 1.0) {
      when.sample = it->get<double>();
    } else {
      p.error("/when/sample", "expected a number 0..1, got " + Parser::describe(*it));
    }
  }
}

} // namespace

std::string escapePointerToken(std::string_view token) {
  return sdk::json::escapePointerToken(token);
}

Config parseConfig(std::string_view json_text, const PathResolver& resolve_path,
                   std::vector<ConfigError>& errors) {
  Parser p(errors);
  Config config;
  const Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (root.is_discarded()) {
    p.error("", "the config is not valid JSON");
    return config;
  }
  if (!p.object(root, "", {"path", "format", "when", "buffer_bytes", "flush_ms"})) {
    return config;
  }
  if (const auto it = root.find("path"); it != root.end()) {
    if (!it->is_string()) {
      p.error("/path", "expected a string, got " + Parser::describe(*it));
    } else if (it->get_ref<const std::string&>().empty()) {
      p.error("/path", "expected \"stdout\", \"stderr\" or a file path, got \"\"");
    } else if (const auto& s = it->get_ref<const std::string&>(); s == "stdout") {
      config.sink = Sink::Stdout;
      config.path = s;
    } else if (s == "stderr") {
      config.sink = Sink::Stderr;
      config.path = s;
    } else if (s.find('\0') != std::string::npos) {
      p.error("/path", "a file path cannot contain a NUL byte");
    } else if (auto resolved = resolve_path(s); !resolved || resolved->empty()) {
      p.error("/path", "cannot resolve \"" + s + "\" (the resolved path is too long)");
    } else {
      config.sink = Sink::File;
      config.path = std::move(*resolved);
    }
  } else {
    config.path = "stdout";
  }
  if (const auto it = root.find("format"); it != root.end()) {
    parseFormat(p, *it, config);
  }
  if (const auto it = root.find("when"); it != root.end()) {
    parseWhen(p, *it, config.when);
  }
  if (const auto it = root.find("buffer_bytes"); it != root.end()) {
    if (auto n = p.integer(*it, "/buffer_bytes", 0, Config::kMaxBufferBytes)) {
      config.buffer_bytes = *n;
    }
  }
  if (const auto it = root.find("flush_ms"); it != root.end()) {
    if (auto n = p.integer(*it, "/flush_ms", 1, Config::kMaxFlushMs)) {
      config.flush_ms = *n;
    }
  }
  return config;
}

} // namespace sluice::filters::access_log
