#include "filters/ratelimit/config.h"

#include <arpa/inet.h>

namespace sluice::filters::ratelimit {

namespace {

using common::ConfigReader;
using common::Json;

void parseKey(ConfigReader& r, const Json& v, const std::string& ptr, Rule& rule) {
  if (!r.object(v, ptr, {"header", "client_ip", "metadata"})) {
    return;
  }
  if (v.size() != 1) {
    r.error(ptr, "expected exactly one of {\"header\": NAME}, {\"client_ip\": true} or "
                 "{\"metadata\": KEY}");
    return;
  }
  if (v.contains("header")) {
    rule.key = Rule::KeyKind::Header;
    if (r.str(v, ptr, "header", rule.key_name, true, true)) {
      if (!ConfigReader::isToken(rule.key_name)) {
        r.error(ptr + "/header", "expected a header name, got \"" + rule.key_name + "\"");
      }
      rule.key_name = ConfigReader::lower(rule.key_name);
    }
  } else if (v.contains("client_ip")) {
    rule.key = Rule::KeyKind::ClientIp;
    bool on = false;
    if (r.boolean(v, ptr, "client_ip", on) && !on) {
      r.error(ptr + "/client_ip", "expected true (leave the key out for the client IP)");
    }
  } else if (v.contains("metadata")) {
    rule.key = Rule::KeyKind::Metadata;
    r.str(v, ptr, "metadata", rule.key_name, true, true);
  }
}

void parseRedis(ConfigReader& r, const Json& v, const std::string& ptr, RedisSettings& s) {
  if (!r.object(v, ptr, {"address", "cluster", "prefix", "timeout_ms", "failure_mode"})) {
    return;
  }
  if (v.contains("address") && v.contains("cluster")) {
    r.error(ptr, "give \"address\" or \"cluster\", not both");
  } else if (v.contains("cluster")) {
    r.str(v, ptr, "cluster", s.cluster, true, true); // existence: checked by the filter config
  } else {
    std::string address;
    if (r.str(v, ptr, "address", address, true, true) &&
        !parseRedisAddress(address, s.host, s.port)) {
      r.error(ptr + "/address",
              "expected \"IPv4:port\", \"[IPv6]:port\" or \"localhost:port\", got \"" + address +
                  "\" (to reach Redis by name, give \"cluster\": a cluster resolves and refreshes "
                  "its hostnames)");
    }
  }
  r.str(v, ptr, "prefix", s.prefix);
  uint64_t timeout = s.timeout_ms;
  if (r.uint(v, ptr, "timeout_ms", timeout, 1, 60000)) {
    s.timeout_ms = static_cast<uint32_t>(timeout);
  }
  std::string mode;
  if (r.str(v, ptr, "failure_mode", mode)) {
    if (mode == "deny") {
      s.deny_on_failure = true;
    } else if (mode != "allow") {
      r.error(ptr + "/failure_mode", "expected \"allow\" or \"deny\", got \"" + mode + "\"");
    }
  }
}

} // namespace

bool parseRedisAddress(const std::string& text, std::string& host, uint16_t& port) {
  std::string h;
  std::string p;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) {
      return false;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return false;
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h == "localhost") {
      h = "127.0.0.1";
    }
    in_addr a4{};
    if (inet_pton(AF_INET, h.c_str(), &a4) != 1) {
      return false;
    }
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  unsigned long n = std::stoul(p);
  if (n == 0 || n > 65535) {
    return false;
  }
  host = h;
  port = static_cast<uint16_t>(n);
  return true;
}

std::unique_ptr<Config> Config::parse(sluice_str_t json, ConfigReader& r) {
  Json root;
  if (!r.parse(json, root)) {
    return nullptr;
  }
  if (!r.object(root, "", {"rules", "backend", "response_headers", "max_keys"})) {
    return nullptr;
  }
  auto c = std::make_unique<Config>();
  if (const Json* rules = r.array(root, "", "rules", true, true)) {
    for (size_t i = 0; i < rules->size(); i++) {
      const std::string ptr = "/rules/" + std::to_string(i);
      const Json& rv = (*rules)[i];
      Rule rule;
      if (!r.object(rv, ptr, {"match", "key", "requests_per_minute", "burst"})) {
        continue;
      }
      auto m = rv.find("match");
      rule.match = c->matches.add(m == rv.end() ? Json::object() : *m, ptr + "/match", r);
      if (auto k = rv.find("key"); k != rv.end()) {
        parseKey(r, *k, ptr + "/key", rule);
      }
      uint64_t rpm = 0;
      uint64_t burst = 0;
      if (r.uint(rv, ptr, "requests_per_minute", rpm, 1, kMaxRequestsPerMinute, true)) {
        rule.limit.requests_per_minute = static_cast<uint32_t>(rpm);
      }
      if (r.uint(rv, ptr, "burst", burst, 1, kMaxBurst, true)) {
        rule.limit.burst = static_cast<uint32_t>(burst);
      }
      c->rules.push_back(std::move(rule));
    }
  }
  if (auto b = root.find("backend"); b != root.end()) {
    if (b->is_string() && b->get_ref<const std::string&>() == "local") {
      // the default
    } else if (b->is_object() && b->contains("redis")) {
      if (r.object(*b, "/backend", {"redis"})) {
        c->redis = std::make_unique<RedisSettings>();
        parseRedis(r, (*b)["redis"], "/backend/redis", *c->redis);
      }
    } else {
      r.error("/backend",
              "expected \"local\" or {\"redis\": {...}}, got " + ConfigReader::describe(*b));
    }
  }
  r.boolean(root, "", "response_headers", c->response_headers);
  r.uint(root, "", "max_keys", c->max_keys, 64, 100000000);
  if (!r.ok() || !c->matches.finish(r)) {
    return nullptr;
  }
  return c;
}

} // namespace sluice::filters::ratelimit
