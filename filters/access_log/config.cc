#include "filters/access_log/config.h"

#include <utility>

namespace sluice::filters::access_log {

namespace {

using common::ConfigReader;
using common::Json;

// Types, ranges, unknown keys and their wordings come from the filters' shared reader
// (filters/common/config_reader.h); only access_log's own choices are checked here. Parsing is
// off the data path but never throws: the text is parsed with exceptions off and every value is
// type-checked before it is read.

void parseFormat(ConfigReader& r, const Json& v, Config& config) {
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
    r.error("/format", "expected \"json\", \"combined\" or {\"template\": \"...\"}, got " +
                           ConfigReader::describe(v));
    return;
  }
  r.object(v, "/format", {"template"});
  if (!v.contains("template")) {
    r.error("/format/template", "missing: a format object needs a \"template\" string");
    return;
  }
  std::string text;
  if (!r.str(v, "/format", "template", text, true, true)) {
    return;
  }
  std::string message;
  auto segments = parseTemplate(text, message);
  if (!segments) {
    r.error("/format/template", message);
    return;
  }
  config.formatter = Formatter::fromTemplate(std::move(*segments));
}

void parseWhen(ConfigReader& r, const Json& v, When& when) {
  if (!r.object(v, "/when", {"status_min", "min_duration_ms", "sample"})) {
    return;
  }
  r.uint(v, "/when", "status_min", when.status_min, 100, 599);
  r.uint(v, "/when", "min_duration_ms", when.min_duration_ms, 0, Config::kMaxMinDurationMs);
  r.number(v, "/when", "sample", when.sample, 0.0, 1.0);
}

void parsePath(ConfigReader& r, const Json& root, const PathResolver& resolve_path,
               Config& config) {
  std::string s;
  if (!r.member(root, "", "path")) {
    config.path = "stdout";
    return;
  }
  if (!r.str(root, "", "path", s)) {
    return;
  }
  if (s.empty()) {
    r.error("/path", "expected \"stdout\", \"stderr\" or a file path, got \"\"");
  } else if (s == "stdout" || s == "stderr") {
    config.sink = s == "stdout" ? Sink::Stdout : Sink::Stderr;
    config.path = std::move(s);
  } else if (s.find('\0') != std::string::npos) {
    r.error("/path", "a file path cannot contain a NUL byte");
  } else if (auto resolved = resolve_path(s); !resolved || resolved->empty()) {
    r.error("/path", "cannot resolve \"" + s + "\" (the resolved path is too long)");
  } else {
    config.sink = Sink::File;
    config.path = std::move(*resolved);
  }
}

} // namespace

Config parseConfig(std::string_view json_text, const PathResolver& resolve_path,
                   std::vector<ConfigError>& errors) {
  ConfigReader r;
  Config config;
  Json root;
  if (r.parse(sluice_str_t{json_text.data(), json_text.size()}, root) &&
      r.object(root, "", {"path", "format", "when", "buffer_bytes", "flush_ms"})) {
    parsePath(r, root, resolve_path, config);
    if (const Json* format = r.member(root, "", "format")) {
      parseFormat(r, *format, config);
    }
    if (const Json* when = r.member(root, "", "when")) {
      parseWhen(r, *when, config.when);
    }
    r.uint(root, "", "buffer_bytes", config.buffer_bytes, 0, Config::kMaxBufferBytes);
    r.uint(root, "", "flush_ms", config.flush_ms, 1, Config::kMaxFlushMs);
  }
  errors.insert(errors.end(), r.errors().begin(), r.errors().end());
  return config;
}

} // namespace sluice::filters::access_log
