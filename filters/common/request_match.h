#pragma once

// Request matching for filter rules, in the router's `match` form:
//   {"prefix": "/api"} | {"path": "/exact"} | {"regex": "^/users/[0-9]+$"} | {} (everything),
//   plus optional "methods": ["GET", ...] and
//   "headers": [{"name": "x-canary", "exact"|"prefix"|"regex": "...", or "present": bool}].
// Paths are matched without the query string, on the path the host already normalized.
// Regexes are compiled once (Hyperscan, one database each) when the config is parsed; each
// worker evaluates them with its own scratch from newScratch(). The router reads and evaluates
// its `match.headers` with the same functions (parseHeaderConditions, headerConditionsHold).

#include "filters/common/config_reader.h"
#include "sluice/filter.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <hs/hs.h>

namespace sluice::filters::common {

struct HeaderCondition {
  enum class Kind { Exact, Prefix, Regex, Present, Absent };
  std::string name; // lower case
  Kind kind = Kind::Present;
  std::string value;
  hs_database_t* db = nullptr;
};

// Compiles the regex of a header condition found at `ptr` (its "regex" key); null, with an error
// reported by the compiler, when it cannot. The caller owns the database.
using HeaderRegexCompiler =
    std::function<hs_database_t*(const std::string& pattern, const std::string& ptr)>;

// Parses the optional "headers" array of the match object `match` found at `ptr`:
//   [{"name": TOKEN, plus at most one of "exact"|"prefix"|"regex": "..." or "present": bool}]
// (without any of them the header must be present). Names are lower-cased. Errors go to
// `reader`; a condition is kept in the list even when it has one, so indices stay aligned.
// The one reader of header conditions: MatchSet (ratelimit, jwt_authn) and the router use it,
// each compiling regexes its own way (the router anchors them at both ends).
std::vector<HeaderCondition> parseHeaderConditions(const Json& match, const std::string& ptr,
                                                   ConfigReader& reader,
                                                   const HeaderRegexCompiler& compile);

// Whether `text` matches the single-pattern database `db` (false without a db or scratch).
bool regexMatches(hs_database_t* db, std::string_view text, hs_scratch_t* scratch);

// Whether every condition holds; `header(name, &value)` looks a request header up by its lower
// case name. `scratch` must have been allocated for every regex condition's database.
// Allocation-free.
template <typename HeaderLookup>
bool headerConditionsHold(const std::vector<HeaderCondition>& conditions, HeaderLookup&& header,
                          hs_scratch_t* scratch) {
  for (const HeaderCondition& h : conditions) {
    std::string_view value;
    bool present = header(h.name, &value); // a lookup may take the name as a string or a view
    switch (h.kind) {
    case HeaderCondition::Kind::Present:
      if (!present) {
        return false;
      }
      break;
    case HeaderCondition::Kind::Absent:
      if (present) {
        return false;
      }
      break;
    case HeaderCondition::Kind::Exact:
      if (!present || value != h.value) {
        return false;
      }
      break;
    case HeaderCondition::Kind::Prefix:
      if (!present || value.substr(0, h.value.size()) != h.value) {
        return false;
      }
      break;
    case HeaderCondition::Kind::Regex:
      if (!present || !regexMatches(h.db, value, scratch)) {
        return false;
      }
      break;
    }
  }
  return true;
}

struct RequestMatch {
  enum class Kind { Any, Prefix, Path, Regex };
  Kind kind = Kind::Any;
  std::string value;
  hs_database_t* db = nullptr;
  std::vector<std::string> methods;
  std::vector<HeaderCondition> headers;
};

class MatchSet {
public:
  MatchSet() = default;
  ~MatchSet();
  MatchSet(const MatchSet&) = delete;
  MatchSet& operator=(const MatchSet&) = delete;

  // Parses the match object `v` found at `ptr`; errors go to `reader`. Returns the index of the
  // new match (also on error, so callers can keep indices aligned).
  size_t add(const Json& v, const std::string& ptr, ConfigReader& reader);
  // Call once after every add(): prepares the scratch prototype. False on failure (reported).
  bool finish(ConfigReader& reader);

  // Per-worker scratch (nullptr when no match uses a regex). Free with hs_free_scratch.
  hs_scratch_t* newScratch() const;

  size_t size() const { return matches_.size(); }
  const RequestMatch& at(size_t i) const { return matches_[i]; }

  // Whether match i holds for the stream's request. Allocation-free.
  bool matches(size_t i, const sluice_host_t* host, sluice_stream_t* s,
               hs_scratch_t* scratch) const;
  // The same on plain values; `header(name, &value)` looks a request header up.
  template <typename HeaderLookup>
  bool matches(size_t i, std::string_view method, std::string_view path, HeaderLookup&& header,
               hs_scratch_t* scratch) const;

private:
  hs_database_t* compile(const std::string& pattern, const std::string& ptr, ConfigReader& reader);

  std::vector<RequestMatch> matches_;
  std::vector<hs_database_t*> dbs_;
  hs_scratch_t* proto_ = nullptr;
};

template <typename HeaderLookup>
bool MatchSet::matches(size_t i, std::string_view method, std::string_view path,
                       HeaderLookup&& header, hs_scratch_t* scratch) const {
  const RequestMatch& m = matches_[i];
  size_t q = path.find('?');
  std::string_view p = q == std::string_view::npos ? path : path.substr(0, q);
  switch (m.kind) {
  case RequestMatch::Kind::Any:
    break;
  case RequestMatch::Kind::Prefix:
    if (p.substr(0, m.value.size()) != m.value) {
      return false;
    }
    break;
  case RequestMatch::Kind::Path:
    if (p != m.value) {
      return false;
    }
    break;
  case RequestMatch::Kind::Regex:
    if (!regexMatches(m.db, p, scratch)) {
      return false;
    }
    break;
  }
  if (!m.methods.empty()) {
    bool any = false;
    for (const std::string& mm : m.methods) {
      any = any || mm == method;
    }
    if (!any) {
      return false;
    }
  }
  return headerConditionsHold(m.headers, header, scratch);
}

} // namespace sluice::filters::common
