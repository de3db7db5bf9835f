#pragma once

// Reads a filter's JSON config and collects errors by JSON pointer (relative to the filter's
// "config" object), for reporting with sluice_host_config_error. Every getter returns false
// when the key is absent or wrong (and records an error in the latter case).

#include "sluice/filter.h"

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filters::common {

using Json = nlohmann::json;

struct ConfigError {
  std::string pointer;
  std::string message;

  bool operator==(const ConfigError&) const = default;
};

class ConfigReader {
public:
  // A short rendering of a JSON value for messages ("42", "\"abc\"", "[1,2,...").
  static std::string describe(const Json& v);
  static std::string lower(std::string_view s);

  // Parses the filter's config text; an empty text is an empty object. False (with an error at
  // "") when it is not JSON.
  bool parse(sluice_str_t text, Json& out);

  void error(const std::string& pointer, std::string message);
  bool ok() const { return errors_.empty(); }
  const std::vector<ConfigError>& errors() const { return errors_; }
  // Reports every error through the host; returns true if there were none.
  bool report(const sluice_host_t* host, sluice_config_ctx_t* cfg) const;

  // `v` must be an object whose keys are all in `keys`.
  bool object(const Json& v, const std::string& ptr, std::initializer_list<const char*> keys);
  bool str(const Json& o, const std::string& ptr, const char* key, std::string& out,
           bool required = false, bool non_empty = false);
  bool boolean(const Json& o, const std::string& ptr, const char* key, bool& out);
  bool uint(const Json& o, const std::string& ptr, const char* key, uint64_t& out, uint64_t min,
            uint64_t max, bool required = false);
  // The same for a 32-bit field (the range must fit it).
  bool uint(const Json& o, const std::string& ptr, const char* key, uint32_t& out, uint32_t min,
            uint32_t max, bool required = false);
  bool number(const Json& o, const std::string& ptr, const char* key, double& out, double min,
              double max, bool required = false);
  const Json* array(const Json& o, const std::string& ptr, const char* key, bool required = false,
                    bool non_empty = false);
  // An array of non-empty strings.
  bool strings(const Json& o, const std::string& ptr, const char* key,
               std::vector<std::string>& out, bool required = false, bool non_empty = false);
  // An RFC 9110 token (header names, methods).
  static bool isToken(std::string_view s);

  // The member `key` of object `o` whatever its type, or null (with a "required" error when
  // `required`): for a value the caller checks itself (a nested object, a choice of types).
  const Json* member(const Json& o, const std::string& ptr, const char* key, bool required = false);

private:
  std::vector<ConfigError> errors_;
};

} // namespace sluice::filters::common
