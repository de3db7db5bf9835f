#pragma once

// The router's immutable route table, parsed once per config load and shared by all workers.

#include "filters/common/request_match.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <hs/hs.h>

namespace sluice::filters::router {

struct HeaderOp {
  std::string name;
  std::string value;
  bool append = false;
};

struct Route {
  enum class MatchKind { Prefix, Path, Regex };
  enum class Action { Cluster, Weighted, Redirect, Direct };
  std::string name;
  MatchKind kind = MatchKind::Prefix;
  std::string value;
  unsigned regex_id = 0;
  std::vector<std::string> methods;
  // Parsed and evaluated by the filters' shared code (filters/common/request_match.h); a regex
  // condition has its own single-pattern database, anchored at both ends, owned by the table.
  std::vector<common::HeaderCondition> headers;
  Action action = Action::Cluster;
  std::string cluster;
  std::vector<std::pair<std::string, uint32_t>> weighted;
  uint32_t total_weight = 0;
  // redirect
  std::string redirect_path;
  std::string redirect_host;
  std::string redirect_scheme;
  bool redirect_strip_query = false;
  uint32_t status = 301;
  // direct_response
  std::string body;
  // rewriting and policy
  bool strip_prefix = false;
  std::optional<std::string> prefix_rewrite;
  uint32_t timeout_ms = 0;
  uint32_t retry_attempts = 0;
  uint32_t retry_on = 0;
  uint32_t per_try_timeout_ms = 0;
  std::vector<HeaderOp> request_headers_to_add;
  std::vector<std::string> request_headers_to_remove;
  std::vector<HeaderOp> response_headers_to_add;
  std::vector<std::string> response_headers_to_remove;
};

struct VirtualHost {
  std::string name;
  std::vector<Route> routes;
  std::vector<HeaderOp> request_headers_to_add;
  std::vector<HeaderOp> response_headers_to_add;
  std::vector<std::string> response_headers_to_remove;
  bool has_regex = false;
  // Index preserving first-match order: routes whose prefix or path spans a whole first path
  // segment are listed under that segment; every other route is generic (checked always).
  struct SegHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, std::vector<uint32_t>, SegHash, std::equal_to<>> by_segment;
  std::vector<uint32_t> generic;
  void buildIndex();
};

class RouteTable {
public:
  RouteTable() = default;
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Parses the router's JSON config with the filters' shared reader, which collects the errors
  // (by JSON pointer); null if there is any. `cluster_exists` checks cluster references.
  // `progress` (optional) gets a line for the log about once a second while a large table is
  // parsed ("building config: compiled 12000/20000 routes"), while its regexes compile, and
  // when a parse that took a second or more is done.
  static std::unique_ptr<RouteTable>
  parse(std::string_view json, const std::function<bool(std::string_view)>& cluster_exists,
        common::ConfigReader& reader,
        const std::function<void(const std::string&)>& progress = nullptr);

  // Virtual host for an authority (case-insensitive, port ignored); null if none.
  const VirtualHost* findVirtualHost(std::string_view authority) const;

  // Per-worker matching state.
  struct Scratch {
    hs_scratch_t* hs = nullptr;
    std::vector<uint8_t> matched; // by regex id
    std::vector<unsigned> touched;
    ~Scratch() {
      if (hs != nullptr) {
        hs_free_scratch(hs);
      }
    }
  };
  std::unique_ptr<Scratch> newScratch() const;

  // First route of `vh` matching the request; `header` looks a request header up.
  template <typename HeaderLookup>
  const Route* match(const VirtualHost& vh, std::string_view method, std::string_view path,
                     HeaderLookup&& header, Scratch& scratch) const;

  size_t regexCount() const { return regex_count_; }

private:
  bool scanRegexes(std::string_view path, Scratch& scratch) const;

  std::vector<VirtualHost> vhosts_;
  struct StrHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, const VirtualHost*, StrHash, std::equal_to<>> exact_;
  // Wildcard domains by their fixed part, and the distinct lengths of those parts, longest
  // first: a lookup is one hash probe per distinct length (at most the longest host name), never
  // a scan of the domains, and the longest (most specific) match wins.
  struct Affixes {
    std::unordered_map<std::string, const VirtualHost*, StrHash, std::equal_to<>> by_text;
    std::vector<size_t> lengths;
    void add(std::string text, const VirtualHost* vh);
    void finish();
  };
  Affixes suffixes_; // "*.x.com" -> ".x.com"
  Affixes prefixes_; // "foo.*" -> "foo."
  const VirtualHost* default_ = nullptr;
  hs_database_t* db_ = nullptr; // every path regex of the table
  hs_scratch_t* proto_scratch_ = nullptr;
  std::vector<hs_database_t*> header_dbs_;
  size_t regex_count_ = 0;
};

// True for a method sluice's HTTP/1 parser accepts (the request methods of llhttp's table, upper
// case as they must be sent); anything else can never match a request.
bool knownMethod(std::string_view method);

// Strips an optional ":port" and lower-cases into buf; returns the host part.
std::string_view hostOf(std::string_view authority, std::string& buf);

template <typename HeaderLookup>
const Route* RouteTable::match(const VirtualHost& vh, std::string_view method,
                               std::string_view path, HeaderLookup&& header,
                               Scratch& scratch) const {
  size_t q = path.find('?');
  std::string_view p = q == std::string_view::npos ? path : path.substr(0, q);
  bool scanned = false;
  // Candidates: the routes indexed under the first path segment, merged in route order with the
  // generic ones.
  static const std::vector<uint32_t> kNone;
  const std::vector<uint32_t>* seg = &kNone;
  if (!vh.by_segment.empty() && p.size() > 1) {
    size_t slash = p.find('/', 1);
    std::string_view first =
        p.substr(1, slash == std::string_view::npos ? p.size() - 1 : slash - 1);
    auto it = vh.by_segment.find(first);
    if (it != vh.by_segment.end()) {
      seg = &it->second;
    }
  }
  size_t gi = 0, si = 0;
  while (gi < vh.generic.size() || si < seg->size()) {
    uint32_t idx;
    if (si >= seg->size() || (gi < vh.generic.size() && vh.generic[gi] < (*seg)[si])) {
      idx = vh.generic[gi++];
    } else {
      idx = (*seg)[si++];
    }
    const Route& r = vh.routes[idx];
    switch (r.kind) {
    case Route::MatchKind::Prefix:
      if (p.substr(0, r.value.size()) != r.value) {
        continue;
      }
      break;
    case Route::MatchKind::Path:
      if (p != r.value) {
        continue;
      }
      break;
    case Route::MatchKind::Regex:
      if (!scanned) {
        scanRegexes(p, scratch);
        scanned = true;
      }
      if (!scratch.matched[r.regex_id]) {
        continue;
      }
      break;
    }
    if (!r.methods.empty()) {
      bool ok = false;
      for (const auto& m : r.methods) {
        if (m == method) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        continue;
      }
    }
    if (!common::headerConditionsHold(r.headers, header, scratch.hs)) {
      continue;
    }
    if (scanned) {
      for (unsigned id : scratch.touched) {
        scratch.matched[id] = 0;
      }
      scratch.touched.clear();
    }
    return &r;
  }
  if (scanned) {
    for (unsigned id : scratch.touched) {
      scratch.matched[id] = 0;
    }
    scratch.touched.clear();
  }
  return nullptr;
}

} // namespace sluice::filters::router
