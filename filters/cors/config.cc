#include "filters/cors/config.h"

#include <utility>

namespace sluice::filters::cors {

namespace {

using common::ConfigReader;
using common::Json;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    out += out.empty() ? "" : ", ";
    out += s;
  }
  return out;
}

// "null", or scheme "://" host [":" port] with nothing after it (an origin has no path).
bool validOrigin(std::string_view o) {
  if (o == "null") {
    return true;
  }
  size_t sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return false;
  }
  for (char c : o.substr(0, sep)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  std::string_view rest = o.substr(sep + 3);
  if (rest.empty()) {
    return false;
  }
  for (char c : rest) {
    if (c == '/' || c == '?' || c == '#' || c == ' ' || c == ',' ||
        static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return false;
    }
  }
  return true;
}

void tokenList(ConfigReader& r, const Json& root, const char* key, const char* what, bool lower,
               std::string& joined) {
  std::vector<std::string> items;
  if (!r.strings(root, "", key, items)) {
    return;
  }
  for (size_t i = 0; i < items.size(); i++) {
    if (!ConfigReader::isToken(items[i])) {
      r.error(std::string("/") + key + "/" + std::to_string(i),
              std::string("expected ") + what + ", got \"" + items[i] + "\"");
    }
    if (lower) {
      items[i] = ConfigReader::lower(items[i]);
    }
  }
  joined = join(items);
}

int onMatch(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  *static_cast<bool*>(ctx) = true;
  return 1; // one match is enough
}

constexpr unsigned kRegexFlags = HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL;

} // namespace

Config::~Config() {
  if (regex_db_ != nullptr) {
    hs_free_database(regex_db_);
  }
  if (scratch_proto_ != nullptr) {
    hs_free_scratch(scratch_proto_);
  }
}

std::unique_ptr<Config> Config::parse(sluice_str_t json, ConfigReader& r) {
  Json root;
  if (!r.parse(json, root)) {
    return nullptr;
  }
  if (!r.object(root, "",
                {"allow_origins", "allow_origin_regex", "allow_methods", "allow_headers",
                 "expose_headers", "max_age_s", "allow_credentials"})) {
    return nullptr;
  }
  std::unique_ptr<Config> c(new Config);
  r.boolean(root, "", "allow_credentials", c->allow_credentials_);

  std::vector<std::string> origins;
  if (r.strings(root, "", "allow_origins", origins)) {
    for (size_t i = 0; i < origins.size(); i++) {
      const std::string ptr = "/allow_origins/" + std::to_string(i);
      if (origins[i] == "*") {
        c->wildcard_ = true;
        if (c->allow_credentials_) {
          r.error(ptr, "\"*\" cannot be combined with \"allow_credentials\": true (browsers "
                       "refuse credentialed requests to a wildcard origin); list the origins");
        }
        continue;
      }
      std::string o = ConfigReader::lower(origins[i]);
      if (!validOrigin(o)) {
        r.error(ptr,
                "expected an origin such as \"https://app.example.com\" (scheme://host[:port], "
                "no path), \"null\" or \"*\", got \"" +
                    origins[i] + "\"");
        continue;
      }
      c->origins_.push_back(std::move(o));
    }
  }
  for (const std::string& o : c->origins_) {
    c->origin_set_.insert(o);
  }

  std::vector<std::string> regexes;
  if (r.strings(root, "", "allow_origin_regex", regexes) && !regexes.empty()) {
    // Each regex must match the whole Origin: an unanchored "example\.com" must not accept
    // "https://example.com.evil.net".
    std::vector<std::string> anchored;
    bool good = true;
    for (size_t i = 0; i < regexes.size(); i++) {
      anchored.push_back("^(?:" + regexes[i] + ")$");
      hs_database_t* db = nullptr;
      hs_compile_error_t* err = nullptr;
      if (hs_compile(anchored.back().c_str(), kRegexFlags, HS_MODE_BLOCK, nullptr, &db, &err) !=
          HS_SUCCESS) {
        r.error("/allow_origin_regex/" + std::to_string(i),
                std::string("invalid regex: ") +
                    (err != nullptr && err->message != nullptr ? err->message : "?"));
        hs_free_compile_error(err);
        good = false;
        continue;
      }
      hs_free_database(db);
    }
    if (good) {
      std::vector<const char*> patterns;
      std::vector<unsigned> flags(anchored.size(), kRegexFlags);
      std::vector<unsigned> ids;
      for (size_t i = 0; i < anchored.size(); i++) {
        patterns.push_back(anchored[i].c_str());
        ids.push_back(static_cast<unsigned>(i));
      }
      hs_compile_error_t* err = nullptr;
      if (hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                           static_cast<unsigned>(patterns.size()), HS_MODE_BLOCK, nullptr,
                           &c->regex_db_, &err) != HS_SUCCESS) {
        r.error("/allow_origin_regex",
                std::string("cannot compile the regexes together: ") +
                    (err != nullptr && err->message != nullptr ? err->message : "?"));
        hs_free_compile_error(err);
      } else if (hs_alloc_scratch(c->regex_db_, &c->scratch_proto_) != HS_SUCCESS) {
        r.error("/allow_origin_regex", "cannot allocate regex scratch space");
      }
    }
  }
  if (root.contains("allow_origins") || root.contains("allow_origin_regex")) {
    // Both present but empty would allow nothing, which is almost certainly a mistake.
    if (c->origins_.empty() && !c->wildcard_ && c->regex_db_ == nullptr && r.ok()) {
      r.error("", "no origin is allowed: give \"allow_origins\" or \"allow_origin_regex\"");
    }
  } else {
    r.error("/allow_origins", "required (or \"allow_origin_regex\")");
  }

  if (root.contains("allow_methods")) {
    tokenList(r, root, "allow_methods", "a method name", false, c->allow_methods_);
  } else {
    c->allow_methods_ = "GET, HEAD, POST";
  }
  tokenList(r, root, "allow_headers", "a header name", true, c->allow_headers_);
  tokenList(r, root, "expose_headers", "a header name", true, c->expose_headers_);
  uint64_t max_age = 0;
  if (r.uint(root, "", "max_age_s", max_age, 0, kMaxAgeLimitS)) {
    c->max_age_ = std::to_string(max_age);
  }
  if (!r.ok()) {
    return nullptr;
  }
  return c;
}

hs_scratch_t* Config::newScratch() const {
  if (scratch_proto_ == nullptr) {
    return nullptr;
  }
  hs_scratch_t* s = nullptr;
  if (hs_clone_scratch(scratch_proto_, &s) != HS_SUCCESS) {
    return nullptr;
  }
  return s;
}

bool Config::originAllowed(std::string_view origin, hs_scratch_t* scratch) const {
  if (origin.empty()) {
    return false;
  }
  if (wildcard_ || origin_set_.count(origin) != 0) {
    return true;
  }
  if (regex_db_ == nullptr || scratch == nullptr) {
    return false;
  }
  bool matched = false;
  hs_scan(regex_db_, origin.data(), static_cast<unsigned>(origin.size()), 0, scratch, onMatch,
          &matched);
  return matched;
}

} // namespace sluice::filters::cors
