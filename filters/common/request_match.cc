#include "filters/common/request_match.h"

namespace sluice::filters::common {

namespace {

int onMatch(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  *static_cast<bool*>(ctx) = true;
  return 1; // stop scanning
}

std::string_view view(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

} // namespace

std::vector<HeaderCondition> parseHeaderConditions(const Json& match, const std::string& ptr,
                                                   ConfigReader& r,
                                                   const HeaderRegexCompiler& compile) {
  std::vector<HeaderCondition> out;
  const Json* hs = r.array(match, ptr, "headers");
  if (hs == nullptr) {
    return out;
  }
  for (size_t i = 0; i < hs->size(); i++) {
    std::string hp = ptr + "/headers/" + std::to_string(i);
    const Json& h = (*hs)[i];
    if (!r.object(h, hp, {"name", "exact", "prefix", "regex", "present"})) {
      continue;
    }
    HeaderCondition c;
    // docs/config-errors.md: an empty name reads "expected a non-empty string, got \"\"", one
    // that is not an RFC 9110 token "expected a header name, got \"x y\"".
    if (r.str(h, hp, "name", c.name, true, true)) {
      if (!ConfigReader::isToken(c.name)) {
        r.error(hp + "/name",
                "expected a header name, got " + ConfigReader::describe(Json(c.name)));
      }
      c.name = ConfigReader::lower(c.name);
    }
    int n = 0;
    if (r.str(h, hp, "exact", c.value)) {
      c.kind = HeaderCondition::Kind::Exact;
      n++;
    }
    if (r.str(h, hp, "prefix", c.value)) {
      c.kind = HeaderCondition::Kind::Prefix;
      n++;
    }
    if (r.str(h, hp, "regex", c.value)) {
      c.kind = HeaderCondition::Kind::Regex;
      c.db = compile(c.value, hp + "/regex");
      n++;
    }
    bool present = true;
    if (r.boolean(h, hp, "present", present)) {
      c.kind = present ? HeaderCondition::Kind::Present : HeaderCondition::Kind::Absent;
      n++;
    }
    if (n > 1) {
      r.error(hp, "expected at most one of exact, prefix, regex, present");
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool regexMatches(hs_database_t* db, std::string_view text, hs_scratch_t* scratch) {
  if (db == nullptr || scratch == nullptr) {
    return false;
  }
  bool matched = false;
  hs_scan(db, text.data(), static_cast<unsigned>(text.size()), 0, scratch, onMatch, &matched);
  return matched;
}

MatchSet::~MatchSet() {
  for (hs_database_t* db : dbs_) {
    hs_free_database(db);
  }
  if (proto_ != nullptr) {
    hs_free_scratch(proto_);
  }
}

hs_database_t* MatchSet::compile(const std::string& pattern, const std::string& ptr,
                                 ConfigReader& reader) {
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile(pattern.c_str(), HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY | HS_FLAG_DOTALL,
                 HS_MODE_BLOCK, nullptr, &db, &err) != HS_SUCCESS) {
    reader.error(ptr, std::string("invalid regex: ") +
                          (err != nullptr && err->message != nullptr ? err->message : "?"));
    hs_free_compile_error(err);
    return nullptr;
  }
  dbs_.push_back(db);
  return db;
}

size_t MatchSet::add(const Json& v, const std::string& ptr, ConfigReader& r) {
  matches_.emplace_back();
  RequestMatch& m = matches_.back();
  size_t index = matches_.size() - 1;
  if (!r.object(v, ptr, {"prefix", "path", "regex", "methods", "headers"})) {
    return index;
  }
  int kinds = 0;
  if (r.str(v, ptr, "prefix", m.value)) {
    m.kind = RequestMatch::Kind::Prefix;
    kinds++;
    if (m.value.empty() || m.value[0] != '/') {
      r.error(ptr + "/prefix", "a prefix starts with \"/\"");
    }
  }
  if (r.str(v, ptr, "path", m.value)) {
    m.kind = RequestMatch::Kind::Path;
    kinds++;
    if (m.value.empty() || m.value[0] != '/') {
      r.error(ptr + "/path", "a path starts with \"/\"");
    }
  }
  if (r.str(v, ptr, "regex", m.value)) {
    m.kind = RequestMatch::Kind::Regex;
    kinds++;
    m.db = compile(m.value, ptr + "/regex", r);
  }
  if (kinds > 1) {
    r.error(ptr, "expected at most one of prefix, path or regex");
  }
  std::vector<std::string> methods;
  if (r.strings(v, ptr, "methods", methods)) {
    for (size_t i = 0; i < methods.size(); i++) {
      if (!ConfigReader::isToken(methods[i])) {
        r.error(ptr + "/methods/" + std::to_string(i),
                "expected a method name, got " + ConfigReader::describe(Json(methods[i])));
      }
    }
    m.methods = std::move(methods);
  }
  m.headers =
      parseHeaderConditions(v, ptr, r, [&](const std::string& pattern, const std::string& at) {
        return compile(pattern, at, r);
      });
  return index;
}

bool MatchSet::finish(ConfigReader& r) {
  for (hs_database_t* db : dbs_) {
    if (hs_alloc_scratch(db, &proto_) != HS_SUCCESS) {
      r.error("", "could not allocate regex scratch space");
      return false;
    }
  }
  return true;
}

hs_scratch_t* MatchSet::newScratch() const {
  if (proto_ == nullptr) {
    return nullptr;
  }
  hs_scratch_t* s = nullptr;
  if (hs_clone_scratch(proto_, &s) != HS_SUCCESS) {
    return nullptr;
  }
  return s;
}

bool MatchSet::matches(size_t i, const sluice_host_t* host, sluice_stream_t* s,
                       hs_scratch_t* scratch) const {
  sluice_str_t method{}, path{};
  host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":method"), 0, &method);
  host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  return matches(
      i, view(method), view(path),
      [&](std::string_view name, std::string_view* value) {
        sluice_str_t v{};
        if (!host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST,
                                          sluice_str_t{name.data(), name.size()}, 0, &v)) {
          return false;
        }
        *value = view(v);
        return true;
      },
      scratch);
}

} // namespace sluice::filters::common
