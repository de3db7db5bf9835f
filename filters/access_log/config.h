#pragma once

// The access_log config, parsed once per config load into an immutable value shared by every
// worker. Parsing never touches the filesystem; opening the log file is the filter's job.

#include "filters/access_log/formatter.h"
#include "filters/common/config_reader.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filters::access_log {

// A JSON pointer relative to the filter's "config" ("" = the object) and a message, in the
// wordings of the filters' shared reader (docs/config-errors.md).
using ConfigError = common::ConfigError;

// "when": every condition that is set must hold. Defaults mean "no condition".
struct When {
  uint32_t status_min = 0;      // status >= status_min (a stream without a response passes)
  uint64_t min_duration_ms = 0; // duration >= min_duration_ms
  double sample = 1.0;          // fraction kept of what passes the other conditions

  bool operator==(const When&) const = default;
};

enum class Sink { Stdout, Stderr, File };

struct Config {
  static constexpr uint64_t kDefaultBufferBytes = 65536;
  static constexpr uint64_t kMaxBufferBytes = 64ull << 20;
  static constexpr uint64_t kDefaultFlushMs = 1000;
  static constexpr uint64_t kMaxFlushMs = 3600000;
  static constexpr uint64_t kMaxMinDurationMs = 86400000;

  Sink sink = Sink::Stdout;
  std::string path; // Sink::File: the resolved path; otherwise "stdout" / "stderr"
  Formatter formatter = Formatter::json();
  When when;
  uint64_t buffer_bytes = kDefaultBufferBytes; // hand a worker's buffer over past this size
  uint64_t flush_ms = kDefaultFlushMs;         // and at least this often
};

// Resolves a file path from the config (relative to the config file's folder). nullopt when it
// cannot (the resolved path does not fit).
using PathResolver = std::function<std::optional<std::string>(std::string_view)>;

// Parses the filter's "config" JSON text. Every problem is appended to `errors` with its JSON
// pointer; the result is only meaningful when `errors` is empty.
Config parseConfig(std::string_view json_text, const PathResolver& resolve_path,
                   std::vector<ConfigError>& errors);

} // namespace sluice::filters::access_log
