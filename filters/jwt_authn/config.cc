#include "filters/jwt_authn/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace sluice::filters::jwt_authn {

namespace {

using common::ConfigReader;
using common::Json;

// Above this a JWKS file is not a JWKS.
constexpr size_t kMaxJwksFileBytes = 1 << 20;

bool readFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return false;
  }
  out = s.str();
  return out.size() <= kMaxJwksFileBytes;
}

// Adds every JWKS error under `base` (the file's pointer gets the in-document pointer in the
// message, since the document is not part of the config).
void reportJwks(ConfigReader& r, const std::string& base, const std::vector<JwksError>& errors,
                bool in_config) {
  for (const JwksError& e : errors) {
    if (in_config) {
      r.error(base + e.pointer, e.message);
    } else {
      r.error(base,
              "JWKS" + (e.pointer.empty() ? std::string() : " at " + e.pointer) + ": " + e.message);
    }
  }
}

void parseJwksSource(const sluice_host_t* host, sluice_config_ctx_t* ctx, const Json& v,
                     const std::string& ptr, Provider& p, ConfigReader& r) {
  if (!r.object(v, ptr, {"file", "inline", "cluster", "path", "cache_ms"})) {
    return;
  }
  const int sources = static_cast<int>(v.contains("file")) +
                      static_cast<int>(v.contains("inline")) +
                      static_cast<int>(v.contains("cluster"));
  if (sources != 1) {
    r.error(ptr, "expected exactly one of \"file\", \"inline\" or \"cluster\"");
    return;
  }
  if (!v.contains("cluster") && (v.contains("path") || v.contains("cache_ms"))) {
    r.error(ptr + (v.contains("path") ? "/path" : "/cache_ms"), "only valid with \"cluster\"");
  }
  std::vector<JwksError> errors;
  if (v.contains("inline")) {
    p.static_keys = parseJwks(v["inline"], true, errors);
    reportJwks(r, ptr + "/inline", errors, true);
    return;
  }
  std::string file;
  if (v.contains("file") && r.str(v, ptr, "file", file, true, true)) {
    char resolved[4096];
    const size_t n = host->sluice_host_config_resolve_path(ctx, {file.data(), file.size()},
                                                           resolved, sizeof(resolved));
    std::string text;
    if (n == 0 || !readFile(std::string(resolved, n), text)) {
      r.error(ptr + "/file", "cannot read the JWKS file \"" + file + "\"");
      return;
    }
    Json doc = Json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
      r.error(ptr + "/file", "the JWKS file \"" + file + "\" is not JSON");
      return;
    }
    p.static_keys = parseJwks(doc, true, errors);
    reportJwks(r, ptr + "/file", errors, false);
    return;
  }
  if (v.contains("file")) {
    return;
  }
  p.remote = true;
  if (r.str(v, ptr, "cluster", p.jwks.cluster, true, true) &&
      !host->sluice_host_config_cluster_exists(ctx,
                                               {p.jwks.cluster.data(), p.jwks.cluster.size()})) {
    r.error(ptr + "/cluster", "unknown cluster \"" + p.jwks.cluster + "\"");
  }
  if (r.str(v, ptr, "path", p.jwks.path, false, true) && p.jwks.path[0] != '/') {
    r.error(ptr + "/path", "expected a path starting with \"/\"");
  }
  r.uint(v, ptr, "cache_ms", p.jwks.cache_ms, 100, 86400000);
}

void parseProvider(const sluice_host_t* host, sluice_config_ctx_t* ctx, const Json& v,
                   const std::string& ptr, Provider& p, ConfigReader& r) {
  if (!r.object(v, ptr,
                {"name", "issuer", "audiences", "algorithms", "jwks", "from_headers", "from_query",
                 "clock_skew_ms", "forward_payload_header", "claim_to_headers"})) {
    return;
  }
  r.str(v, ptr, "name", p.name, true, true);
  for (char c : p.name) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      r.error(ptr + "/name", "a provider name cannot hold quotes, backslashes or control bytes");
      break;
    }
  }
  p.has_issuer = r.str(v, ptr, "issuer", p.issuer, false, true);
  if (v.contains("audiences")) {
    r.strings(v, ptr, "audiences", p.audiences, false, true);
  }
  std::vector<std::string> algs;
  if (r.strings(v, ptr, "algorithms", algs, true, true)) {
    for (size_t i = 0; i < algs.size(); i++) {
      Alg a;
      if (!parseAlg(algs[i], a)) {
        r.error(ptr + "/algorithms/" + std::to_string(i),
                "unknown algorithm \"" + algs[i] +
                    "\" (expected RS256, RS384, RS512, PS256, ES256, ES384, EdDSA or HS256)");
        continue;
      }
      p.algorithms |= algBit(a);
    }
  }
  auto jwks = v.find("jwks");
  if (jwks == v.end()) {
    r.error(ptr + "/jwks", "required");
  } else {
    parseJwksSource(host, ctx, *jwks, ptr + "/jwks", p, r);
  }
  // A static key set that can verify none of the listed algorithms makes every token fail.
  if (p.static_keys && p.algorithms != 0) {
    bool any = false;
    for (const Jwk& k : p.static_keys->keys) {
      for (size_t i = 0; i < kAlgCount; i++) {
        const Alg a = static_cast<Alg>(i);
        any = any || ((p.algorithms & algBit(a)) != 0 && k.type == keyTypeFor(a) &&
                      (!k.has_alg || k.alg == a));
      }
    }
    if (!any) {
      r.error(ptr + "/jwks", "no key in the JWKS fits any of the listed algorithms");
    }
  }

  if (const Json* headers = r.array(v, ptr, "from_headers", false, true)) {
    for (size_t i = 0; i < headers->size(); i++) {
      const std::string hp = ptr + "/from_headers/" + std::to_string(i);
      const Json& h = (*headers)[i];
      if (!r.object(h, hp, {"name", "prefix"})) {
        continue;
      }
      TokenHeader th;
      if (r.str(h, hp, "name", th.name, true, true) && !ConfigReader::isToken(th.name)) {
        r.error(hp + "/name", "not a valid header name");
      }
      th.name = ConfigReader::lower(th.name);
      r.str(h, hp, "prefix", th.prefix);
      p.from_headers.push_back(std::move(th));
    }
  }
  if (v.contains("from_query")) {
    r.strings(v, ptr, "from_query", p.from_query, false, true);
  }
  if (p.from_headers.empty() && p.from_query.empty()) {
    p.from_headers.push_back(TokenHeader{"authorization", "Bearer "});
  }
  uint64_t skew_ms = 60000;
  r.uint(v, ptr, "clock_skew_ms", skew_ms, 0, 86400000);
  p.clock_skew_s = static_cast<double>(skew_ms) / 1000.0;
  if (r.str(v, ptr, "forward_payload_header", p.forward_payload_header, false, true)) {
    if (!ConfigReader::isToken(p.forward_payload_header)) {
      r.error(ptr + "/forward_payload_header", "not a valid header name");
    }
    p.forward_payload_header = ConfigReader::lower(p.forward_payload_header);
  }
  if (const Json* claims = r.array(v, ptr, "claim_to_headers")) {
    for (size_t i = 0; i < claims->size(); i++) {
      const std::string cp = ptr + "/claim_to_headers/" + std::to_string(i);
      const Json& c = (*claims)[i];
      if (!r.object(c, cp, {"claim", "header"})) {
        continue;
      }
      ClaimToHeader ch;
      r.str(c, cp, "claim", ch.claim, true, true);
      if (r.str(c, cp, "header", ch.header, true, true) && !ConfigReader::isToken(ch.header)) {
        r.error(cp + "/header", "not a valid header name");
      }
      ch.header = ConfigReader::lower(ch.header);
      size_t start = 0;
      while (start <= ch.claim.size()) {
        const size_t dot = ch.claim.find('.', start);
        const size_t end = dot == std::string::npos ? ch.claim.size() : dot;
        if (end == start) {
          r.error(cp + "/claim", "empty segment in the claim path \"" + ch.claim + "\"");
          break;
        }
        ch.path.push_back(ch.claim.substr(start, end - start));
        start = end + 1;
      }
      p.claim_to_headers.push_back(std::move(ch));
    }
  }
  p.realm_header_missing = "Bearer realm=\"" + p.name + "\"";
  p.realm_header_invalid = p.realm_header_missing + ", error=\"invalid_token\"";
  p.realm_header_forbidden = p.realm_header_missing + ", error=\"insufficient_scope\"";
}

} // namespace

std::unique_ptr<Config> parseConfig(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                    sluice_str_t json, ConfigReader& r) {
  Json root;
  if (!r.parse(json, root)) {
    return nullptr;
  }
  auto config = std::make_unique<Config>();
  if (!r.object(root, "", {"providers", "rules", "token_cache_entries"})) {
    return nullptr;
  }
  uint64_t cache = config->token_cache_entries;
  r.uint(root, "", "token_cache_entries", cache, 0, 1 << 20);
  config->token_cache_entries = static_cast<size_t>(cache);
  if (const Json* providers = r.array(root, "", "providers", true, true)) {
    config->providers.resize(providers->size());
    for (size_t i = 0; i < providers->size(); i++) {
      const std::string ptr = "/providers/" + std::to_string(i);
      parseProvider(host, ctx, (*providers)[i], ptr, config->providers[i], r);
      for (size_t j = 0; j < i; j++) {
        if (!config->providers[i].name.empty() &&
            config->providers[j].name == config->providers[i].name) {
          r.error(ptr + "/name", "duplicate provider name \"" + config->providers[i].name + "\"");
        }
      }
    }
  }
  if (const Json* rules = r.array(root, "", "rules", true, true)) {
    for (size_t i = 0; i < rules->size(); i++) {
      const std::string ptr = "/rules/" + std::to_string(i);
      const Json& rv = (*rules)[i];
      Rule rule;
      if (!r.object(rv, ptr, {"match", "requires"})) {
        continue;
      }
      auto m = rv.find("match");
      if (m == rv.end()) {
        r.error(ptr + "/match", "required");
        continue;
      }
      rule.match = config->matches.add(*m, ptr + "/match", r);
      std::string requires_name;
      if (r.str(rv, ptr, "requires", requires_name, false, true)) {
        for (size_t j = 0; j < config->providers.size(); j++) {
          if (config->providers[j].name == requires_name) {
            rule.provider = static_cast<int>(j);
          }
        }
        if (rule.provider < 0) {
          r.error(ptr + "/requires", "unknown provider \"" + requires_name + "\"");
        }
      }
      config->rules.push_back(rule);
    }
  }
  if (!r.ok()) {
    return nullptr;
  }
  auto addUnique = [](std::vector<std::string>& list, const std::string& name) {
    if (!name.empty() && std::find(list.begin(), list.end(), name) == list.end()) {
      list.push_back(name);
    }
  };
  for (const Provider& p : config->providers) {
    addUnique(config->strip_unverified, p.forward_payload_header);
    for (const ClaimToHeader& c : p.claim_to_headers) {
      addUnique(config->strip_unverified, c.header);
    }
  }
  for (Provider& p : config->providers) {
    for (const std::string& name : config->strip_unverified) {
      bool own = name == p.forward_payload_header;
      for (const ClaimToHeader& c : p.claim_to_headers) {
        own = own || name == c.header;
      }
      if (!own) {
        p.strip_others.push_back(name);
      }
    }
  }
  if (!config->matches.finish(r)) {
    return nullptr;
  }
  return config;
}

} // namespace sluice::filters::jwt_authn
