// JSON -> typed config with JSON-pointer errors. Every error is collected; nothing throws out.

#include "core/config/config.h"
#include "sluice/sdk/json.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::config {

namespace {

using json = nlohmann::json;

std::string describe(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) {
    s = s.substr(0, 57) + "...";
  }
  return s;
}

class Parser {
public:
  Parser(std::vector<ConfigError>& errors, std::string base_dir)
      : errors_(errors), base_dir_(std::move(base_dir)) {}

  void error(const std::string& pointer, std::string message) {
    errors_.push_back({pointer, std::move(message)});
  }

  // Checks `obj` is an object and has only `allowed` keys.
  bool object(const json& obj, const std::string& ptr, std::initializer_list<const char*> allowed) {
    if (!obj.is_object()) {
      error(ptr, "expected an object, got " + describe(obj));
      return false;
    }
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool ok = false;
      for (const char* a : allowed) {
        if (it.key() == a) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        error(sdk::json::pointerTo(ptr, it.key()), "unknown key \"" + it.key() + "\"");
      }
    }
    return true;
  }

  const json* field(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  // The member `key`, or null (with a "required" error at `p` when `required`).
  const json* field(const json& obj, const std::string& p, const char* key, bool required) {
    const json* v = field(obj, key);
    if (v == nullptr && required) {
      error(p, "required");
    }
    return v;
  }

  bool getString(const json& obj, const std::string& ptr, const char* key, std::string& out,
                 bool required = false, bool non_empty = false) {
    std::string p = ptr + "/" + key;
    const json* v = field(obj, p, key, required);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_string()) {
      error(p, "expected a string, got " + describe(*v));
      return false;
    }
    out = v->get<std::string>();
    if (non_empty && out.empty()) {
      error(p, "expected a non-empty string, got \"\"");
      return false;
    }
    return true;
  }

  // A string member that names one of `choices`: its index; `absent` when the member is missing
  // (or not a string, which getString reports); -1 when it names none of them (the error lists
  // the choices).
  int getChoice(const json& obj, const std::string& ptr, const char* key,
                std::initializer_list<const char*> choices, int absent) {
    std::string value;
    if (!getString(obj, ptr, key, value)) {
      return absent;
    }
    int i = 0;
    std::string names;
    for (const char* c : choices) {
      if (value == c) {
        return i;
      }
      names += (i++ == 0 ? "" : ", ");
      names += c;
    }
    error(ptr + "/" + key, "expected one of " + names + ", got \"" + value + "\"");
    return -1;
  }

  bool getBool(const json& obj, const std::string& ptr, const char* key, bool& out) {
    const json* v = field(obj, key);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_boolean()) {
      error(ptr + "/" + key, "expected true or false, got " + describe(*v));
      return false;
    }
    out = v->get<bool>();
    return true;
  }

  template <typename T>
  bool getUint(const json& obj, const std::string& ptr, const char* key, T& out, uint64_t min = 0,
               uint64_t max = UINT64_MAX, bool required = false) {
    std::string p = ptr + "/" + key;
    const json* v = field(obj, p, key, required);
    if (v == nullptr) {
      return false;
    }
    uint64_t cap = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    if (!v->is_number_integer() ||
        (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0)) {
      error(p, fmt::format("expected an integer {}..{}, got {}", min, cap, describe(*v)));
      return false;
    }
    uint64_t n = v->get<uint64_t>();
    if (n < min || n > cap) {
      error(p, fmt::format("expected an integer {}..{}, got {}", min, cap, describe(*v)));
      return false;
    }
    out = static_cast<T>(n);
    return true;
  }

  const json* getArray(const json& obj, const std::string& ptr, const char* key,
                       bool required = false, bool non_empty = false) {
    std::string p = ptr + "/" + key;
    const json* v = field(obj, p, key, required);
    if (v == nullptr) {
      return nullptr;
    }
    if (!v->is_array()) {
      error(p, "expected an array, got " + describe(*v));
      return nullptr;
    }
    if (non_empty && v->empty()) {
      error(p, "expected a non-empty array, got []");
      return nullptr;
    }
    return v;
  }

  std::string resolvePath(const std::string& p) const {
    if (p.empty() || p[0] == '/') {
      return p;
    }
    return base_dir_ + "/" + p;
  }

  bool readableFile(const std::string& ptr, const std::string& path) {
    if (access(path.c_str(), R_OK) != 0) {
      error(ptr, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
      return false;
    }
    return true;
  }

  // A secret: "inline", {"env": NAME} or {"file": PATH}.
  bool secret(const json& v, const std::string& ptr, std::string& out) {
    if (v.is_string()) {
      out = v.get<std::string>();
      return true;
    }
    if (v.is_object() && v.size() == 1 && v.contains("env")) {
      if (!v["env"].is_string()) {
        error(ptr + "/env", "expected a string, got " + describe(v["env"]));
        return false;
      }
      std::string name = v["env"].get<std::string>();
      const char* val = std::getenv(name.c_str());
      if (val == nullptr || *val == '\0') {
        error(ptr + "/env", "environment variable " + name + " is not set");
        return false;
      }
      out = val;
      return true;
    }
    if (v.is_object() && v.size() == 1 && v.contains("file")) {
      if (!v["file"].is_string()) {
        error(ptr + "/file", "expected a string, got " + describe(v["file"]));
        return false;
      }
      std::string path = resolvePath(v["file"].get<std::string>());
      std::ifstream f(path, std::ios::binary);
      if (!f) {
        error(ptr + "/file", fmt::format("cannot read {}: {}", path, std::strerror(errno)));
        return false;
      }
      std::stringstream ss;
      ss << f.rdbuf();
      out = ss.str();
      while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
      }
      return true;
    }
    error(ptr, "expected a string, {\"env\": NAME} or {\"file\": PATH}, got " + describe(v));
    return false;
  }

  void address(const json& obj, const std::string& ptr, const char* key, Address& out,
               bool required, bool ip_only) {
    std::string text;
    if (!getString(obj, ptr, key, text, required)) {
      return;
    }
    std::string err;
    if (!parseAddress(text, out, err)) {
      error(ptr + "/" + key, err);
      return;
    }
    if (ip_only && !out.is_ip) {
      error(ptr + "/" + key, "expected an IP address and port, got \"" + text + "\"");
    }
  }

  void parse(const json& root, Config& cfg) {
    if (!object(root, "",
                {"$schema", "workers", "admin", "startup", "shutdown", "overload", "listeners",
                 "clusters"})) {
      return;
    }
    std::string schema_ref; // for editors (`sluice schema`); sluice itself ignores it
    getString(root, "", "$schema", schema_ref);
    getUint(root, "", "workers", cfg.workers, 0, 1024);
    if (const json* a = field(root, "admin")) {
      parseAdmin(*a, cfg.admin);
    }
    if (const json* s = field(root, "startup")) {
      if (object(*s, "/startup", {"wait_for_config_ms"})) {
        getUint(*s, "/startup", "wait_for_config_ms", cfg.startup.wait_for_config_ms, 0, 86400000);
      }
    }
    if (const json* s = field(root, "shutdown")) {
      if (object(*s, "/shutdown", {"pre_drain_ms", "drain_ms", "teardown_ms", "grace_period_ms"})) {
        getUint(*s, "/shutdown", "pre_drain_ms", cfg.shutdown.pre_drain_ms, 0, 86400000);
        getUint(*s, "/shutdown", "drain_ms", cfg.shutdown.drain_ms, 0, 86400000);
        getUint(*s, "/shutdown", "teardown_ms", cfg.shutdown.teardown_ms, 0, 86400000);
        getUint(*s, "/shutdown", "grace_period_ms", cfg.shutdown.grace_period_ms, 0,
                4 * 86400000ull);
      }
    }
    if (const json* o = field(root, "overload")) {
      if (object(*o, "/overload",
                 {"max_connections", "max_requests_per_worker", "max_buffered_bytes_per_worker"})) {
        getUint(*o, "/overload", "max_connections", cfg.overload.max_connections, 0, 100000000);
        getUint(*o, "/overload", "max_requests_per_worker", cfg.overload.max_requests_per_worker, 0,
                100000000);
        getUint(*o, "/overload", "max_buffered_bytes_per_worker",
                cfg.overload.max_buffered_bytes_per_worker, 0, 1ull << 50);
      }
    }
    if (const json* ls = getArray(root, "", "listeners", true, true)) {
      std::set<std::string> names, addrs;
      for (size_t i = 0; i < ls->size(); i++) {
        ListenerConfig l;
        l.pointer = fmt::format("/listeners/{}", i);
        parseListener((*ls)[i], l);
        if (!l.name.empty() && !names.insert(l.name).second) {
          error(l.pointer + "/name", "duplicate listener name \"" + l.name + "\"");
        }
        if (l.address.port != 0 && !addrs.insert(l.address.text).second) {
          error(l.pointer + "/address", "duplicate listener address " + l.address.text);
        }
        cfg.listeners.push_back(std::move(l));
      }
    }
    if (const json* cs = getArray(root, "", "clusters")) {
      std::set<std::string> names;
      for (size_t i = 0; i < cs->size(); i++) {
        ClusterConfig c;
        c.pointer = fmt::format("/clusters/{}", i);
        parseCluster((*cs)[i], c);
        if (!c.name.empty() && !names.insert(c.name).second) {
          error(c.pointer + "/name", "duplicate cluster name \"" + c.name + "\"");
        }
        cfg.clusters.push_back(std::move(c));
      }
    }
  }

  void parseAdmin(const json& a, AdminConfig& admin) {
    if (!object(a, "/admin", {"address", "api_key"})) {
      return;
    }
    admin.enabled = true;
    address(a, "/admin", "address", admin.address, true, false);
    if (const json* k = field(a, "api_key")) {
      secret(*k, "/admin/api_key", admin.api_key);
    }
    const std::string& h = admin.address.host;
    bool loopback = h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
    if (!admin.address.host.empty() && !loopback && admin.api_key.empty()) {
      error("/admin/api_key",
            "a non-loopback admin address (" + admin.address.text + ") needs an api_key");
    }
  }

  void parseListener(const json& l, ListenerConfig& out) {
    const std::string& p = out.pointer;
    if (!object(
            l, p,
            {"name", "address", "tls", "limits", "request_id", "connection_balance", "filters"})) {
      return;
    }
    getString(l, p, "name", out.name, true, true);
    address(l, p, "address", out.address, true, true);
    out.exact_balance = getChoice(l, p, "connection_balance", {"kernel", "exact"}, 0) == 1;
    if (const json* t = field(l, "tls")) {
      ListenerTls tls;
      std::string tp = p + "/tls";
      if (object(*t, tp, {"certificates", "min_version", "alpn"})) {
        if (const json* certs = getArray(*t, tp, "certificates", true, true)) {
          for (size_t i = 0; i < certs->size(); i++) {
            std::string cp = fmt::format("{}/certificates/{}", tp, i);
            const json& c = (*certs)[i];
            if (!object(c, cp, {"cert_file", "key_file"})) {
              continue;
            }
            TlsCertificate tc;
            if (getString(c, cp, "cert_file", tc.cert_file, true, true)) {
              tc.cert_file = resolvePath(tc.cert_file);
              readableFile(cp + "/cert_file", tc.cert_file);
            }
            if (getString(c, cp, "key_file", tc.key_file, true, true)) {
              tc.key_file = resolvePath(tc.key_file);
              readableFile(cp + "/key_file", tc.key_file);
            }
            tls.certificates.push_back(tc);
          }
        }
        if (getString(*t, tp, "min_version", tls.min_version) && tls.min_version != "1.2" &&
            tls.min_version != "1.3") {
          error(tp + "/min_version",
                "expected \"1.2\" or \"1.3\", got \"" + tls.min_version + "\"");
        }
        if (const json* alpn = getArray(*t, tp, "alpn")) {
          for (size_t i = 0; i < alpn->size(); i++) {
            const json& v = (*alpn)[i];
            if (!v.is_string()) {
              error(fmt::format("{}/alpn/{}", tp, i), "expected a string, got " + describe(v));
            } else if (v.get_ref<const std::string&>() != "http/1.1") {
              // A client that picked it would then be answered in HTTP/1.1.
              error(fmt::format("{}/alpn/{}", tp, i),
                    "sluice serves HTTP/1.1 only: expected \"http/1.1\", got " + describe(v));
            } else {
              tls.alpn.push_back(v.get<std::string>());
            }
          }
        }
      }
      out.tls = tls;
    }
    if (const json* lim = field(l, "limits")) {
      std::string lp = p + "/limits";
      if (object(*lim, lp,
                 {"max_connections", "max_request_headers_bytes", "max_request_body_bytes",
                  "header_timeout_ms", "idle_timeout_ms"})) {
        getUint(*lim, lp, "max_connections", out.limits.max_connections, 1, 10000000);
        getUint(*lim, lp, "max_request_headers_bytes", out.limits.max_request_headers_bytes, 1024,
                16 * 1024 * 1024);
        getUint(*lim, lp, "max_request_body_bytes", out.limits.max_request_body_bytes);
        getUint(*lim, lp, "header_timeout_ms", out.limits.header_timeout_ms, 1, 86400000);
        getUint(*lim, lp, "idle_timeout_ms", out.limits.idle_timeout_ms, 1, 86400000);
      }
    }
    if (const json* r = field(l, "request_id")) {
      std::string rp = p + "/request_id";
      if (object(*r, rp, {"header", "trust_incoming"})) {
        if (getString(*r, rp, "header", out.request_id.header, false, true)) {
          for (char& c : out.request_id.header) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          }
        }
        getBool(*r, rp, "trust_incoming", out.request_id.trust_incoming);
      }
    }
    if (const json* fs = getArray(l, p, "filters", true, true)) {
      std::set<std::string> names;
      for (size_t i = 0; i < fs->size(); i++) {
        std::string fp = fmt::format("{}/filters/{}", p, i);
        const json& f = (*fs)[i];
        if (!object(f, fp, {"type", "name", "module", "config"})) {
          continue;
        }
        FilterEntry e;
        e.pointer = fp;
        getString(f, fp, "type", e.type, true, true);
        e.name = e.type;
        getString(f, fp, "name", e.name, false, true);
        if (getString(f, fp, "module", e.module, false, true)) {
          e.module = resolvePath(e.module);
          readableFile(fp + "/module", e.module);
        }
        e.config_json = "{}";
        if (const json* c = field(f, "config")) {
          if (!c->is_object()) {
            error(fp + "/config", "expected an object, got " + describe(*c));
          } else {
            e.config_json = c->dump();
          }
        }
        if (!e.name.empty() && !names.insert(e.name).second) {
          error(fp + "/name", "duplicate filter name \"" + e.name +
                                  "\" in this listener (set \"name\" to tell them apart)");
        }
        out.filters.push_back(std::move(e));
      }
    }
  }

  void parseCluster(const json& c, ClusterConfig& out) {
    const std::string& p = out.pointer;
    if (!object(c, p,
                {"name", "endpoints", "lb_policy", "hash_on", "connect_timeout_ms", "pool",
                 "health_check", "outlier_detection", "circuit_breaker", "tls",
                 "dns_refresh_ms"})) {
      return;
    }
    getString(c, p, "name", out.name, true, true);
    if (const json* eps = getArray(c, p, "endpoints", true, true)) {
      for (size_t i = 0; i < eps->size(); i++) {
        std::string ep = fmt::format("{}/endpoints/{}", p, i);
        const json& e = (*eps)[i];
        if (!object(e, ep, {"address", "weight"})) {
          continue;
        }
        EndpointConfig ec;
        address(e, ep, "address", ec.address, true, false);
        if (!ec.address.text.empty() && ec.address.port == 0) {
          error(ep + "/address", "an endpoint needs a port other than 0");
        }
        getUint(e, ep, "weight", ec.weight, 1, 1000);
        out.endpoints.push_back(ec);
      }
    }
    static constexpr LbPolicy kPolicies[] = {LbPolicy::RoundRobin, LbPolicy::LeastRequest,
                                             LbPolicy::Random, LbPolicy::RingHash,
                                             LbPolicy::Maglev};
    const int policy = getChoice(
        c, p, "lb_policy", {"round_robin", "least_request", "random", "ring_hash", "maglev"}, 0);
    if (policy >= 0) {
      out.lb_policy = kPolicies[policy];
    }
    bool hashing = out.lb_policy == LbPolicy::RingHash || out.lb_policy == LbPolicy::Maglev;
    if (const json* h = field(c, "hash_on")) {
      if (!hashing) {
        error(p + "/hash_on", "hash_on is only used by the ring_hash and maglev policies");
      } else if (object(*h, p + "/hash_on", {"header", "client_ip"})) {
        HashOn ho;
        if (getString(*h, p + "/hash_on", "header", ho.header, false, true)) {
          for (char& ch : ho.header) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          }
        }
        getBool(*h, p + "/hash_on", "client_ip", ho.client_ip);
        if (ho.header.empty() == !ho.client_ip) {
          error(p + "/hash_on", "expected {\"header\": NAME} or {\"client_ip\": true}");
        }
        out.hash_on = ho;
      }
    }
    if (hashing && !out.hash_on) {
      HashOn ho;
      ho.client_ip = true; // the default key of a hashing policy
      out.hash_on = ho;
    }
    getUint(c, p, "connect_timeout_ms", out.connect_timeout_ms, 1, 86400000);
    getUint(c, p, "dns_refresh_ms", out.dns_refresh_ms, 100, 86400000);
    if (const json* pl = field(c, "pool")) {
      std::string pp = p + "/pool";
      if (object(*pl, pp, {"max_idle_per_worker", "idle_timeout_ms", "max_connections"})) {
        getUint(*pl, pp, "max_idle_per_worker", out.pool.max_idle_per_worker, 0, 1000000);
        getUint(*pl, pp, "idle_timeout_ms", out.pool.idle_timeout_ms, 1, 86400000);
        getUint(*pl, pp, "max_connections", out.pool.max_connections, 1, 10000000);
      }
    }
    if (const json* cb = field(c, "circuit_breaker")) {
      std::string cp = p + "/circuit_breaker";
      if (object(
              *cb, cp,
              {"max_pending", "max_requests", "retry_budget_percent", "min_retry_concurrency"})) {
        getUint(*cb, cp, "max_pending", out.circuit_breaker.max_pending, 1, 100000000);
        getUint(*cb, cp, "max_requests", out.circuit_breaker.max_requests, 1, 100000000);
        getUint(*cb, cp, "retry_budget_percent", out.circuit_breaker.retry_budget_percent, 0, 100);
        getUint(*cb, cp, "min_retry_concurrency", out.circuit_breaker.min_retry_concurrency, 0,
                100000000);
      }
    }
    if (const json* hc = field(c, "health_check")) {
      std::string hp = p + "/health_check";
      if (object(*hc, hp,
                 {"path", "interval_ms", "timeout_ms", "healthy_threshold", "unhealthy_threshold",
                  "expected_statuses"})) {
        HealthCheckConfig h;
        if (getString(*hc, hp, "path", h.path) && (h.path.empty() || h.path[0] != '/')) {
          error(hp + "/path", "expected a path starting with \"/\"");
        }
        getUint(*hc, hp, "interval_ms", h.interval_ms, 1, 86400000);
        getUint(*hc, hp, "timeout_ms", h.timeout_ms, 1, 86400000);
        getUint(*hc, hp, "healthy_threshold", h.healthy_threshold, 1, 1000);
        getUint(*hc, hp, "unhealthy_threshold", h.unhealthy_threshold, 1, 1000);
        if (const json* es = getArray(*hc, hp, "expected_statuses", false, true)) {
          h.expected_statuses.clear();
          for (size_t i = 0; i < es->size(); i++) {
            const json& v = (*es)[i];
            if (!v.is_number_integer() || v.get<int64_t>() < 100 || v.get<int64_t>() > 599) {
              error(hp + "/expected_statuses/" + std::to_string(i),
                    "expected a status 100..599, got " + describe(v));
            } else {
              h.expected_statuses.push_back(static_cast<uint32_t>(v.get<int64_t>()));
            }
          }
        }
        out.health_check = h;
      }
    }
    if (const json* od = field(c, "outlier_detection")) {
      std::string op = p + "/outlier_detection";
      if (object(*od, op, {"consecutive_5xx", "base_ejection_ms", "max_ejection_percent"})) {
        OutlierDetectionConfig o;
        getUint(*od, op, "consecutive_5xx", o.consecutive_5xx, 1, 1000000);
        getUint(*od, op, "base_ejection_ms", o.base_ejection_ms, 1, 86400000);
        getUint(*od, op, "max_ejection_percent", o.max_ejection_percent, 0, 100);
        out.outlier_detection = o;
      }
    }
    if (const json* t = field(c, "tls")) {
      std::string tp = p + "/tls";
      ClusterTls tls;
      if (object(*t, tp, {"sni", "ca_file", "verify"})) {
        getString(*t, tp, "sni", tls.sni);
        getBool(*t, tp, "verify", tls.verify);
        if (getString(*t, tp, "ca_file", tls.ca_file, false, true)) {
          tls.ca_file = resolvePath(tls.ca_file);
          readableFile(tp + "/ca_file", tls.ca_file);
        }
        out.tls = tls; // loading ca_file and the rest: tls::ClientContext
      }
    }
  }

private:
  std::vector<ConfigError>& errors_;
  std::string base_dir_;
};

} // namespace

bool parseAddress(std::string_view text, Address& out, std::string& error) {
  out = Address{};
  out.text = std::string(text);
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = fmt::format("expected \"[ipv6]:port\", got \"{}\"", text);
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      error = fmt::format("expected \"host:port\", got \"{}\"", text);
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    error = fmt::format("expected \"host:port\" with a host, got \"{}\"", text);
    return false;
  }
  if (port.empty() || port.size() > 5) {
    error = fmt::format("expected a port 0..65535 in \"{}\"", text);
    return false;
  }
  uint32_t pv = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') {
      error = fmt::format("expected a port 0..65535 in \"{}\"", text);
      return false;
    }
    pv = pv * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (pv > 65535) {
    error = fmt::format("expected a port 0..65535 in \"{}\"", text);
    return false;
  }
  for (char ch : host) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' ||
          ch == '_')) {
      error = fmt::format("invalid host in \"{}\"", text);
      return false;
    }
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(pv);
  unsigned char buf[16];
  out.is_ip = inet_pton(AF_INET, out.host.c_str(), buf) == 1 ||
              inet_pton(AF_INET6, out.host.c_str(), buf) == 1;
  return true;
}

LoadResult parseConfig(std::string_view json_text, const std::string& base_dir) {
  LoadResult result;
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    result.errors.push_back({"", fmt::format("invalid JSON at byte {}: {}", e.byte, e.what())});
    return result;
  } catch (const json::exception& e) {
    // Not only syntax: a number out of range (1e400) is json::out_of_range during the parse.
    result.errors.push_back({"", fmt::format("invalid JSON: {}", e.what())});
    return result;
  }
  auto cfg = std::make_shared<Config>();
  cfg->base_dir = base_dir;
  cfg->raw_json = std::string(json_text);
  try {
    Parser p(result.errors, base_dir);
    p.parse(root, *cfg);
  } catch (const std::exception& e) {
    result.errors.push_back({"", std::string("invalid configuration: ") + e.what()});
  }
  if (result.errors.empty()) {
    const auto& s = cfg->shutdown;
    if (s.pre_drain_ms + s.drain_ms + s.teardown_ms > s.grace_period_ms) {
      result.warnings.push_back(
          fmt::format("shutdown phases pre_drain_ms={} + drain_ms={} + teardown_ms={} = {} exceed "
                      "grace_period_ms={}",
                      s.pre_drain_ms, s.drain_ms, s.teardown_ms,
                      s.pre_drain_ms + s.drain_ms + s.teardown_ms, s.grace_period_ms));
    }
    result.config = std::move(cfg);
  }
  return result;
}

LoadResult loadConfigFile(const std::string& path) {
  LoadResult result;
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    result.errors.push_back({"", fmt::format("cannot read {}: {}", path, std::strerror(errno))});
    return result;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  char resolved[PATH_MAX];
  std::string abs = realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
  std::string dir = abs.substr(0, abs.find_last_of('/'));
  if (dir.empty()) {
    dir = "/";
  }
  result = parseConfig(ss.str(), dir);
  if (result.config) {
    auto c = std::make_shared<Config>(*result.config);
    c->path = abs;
    result.config = c;
  }
  return result;
}

EnvOverrideResult applyShutdownEnv(ShutdownConfig& shutdown,
                                   const std::function<const char*(const char*)>& getenv_fn) {
  EnvOverrideResult r;
  constexpr uint64_t kOneDay = 86400000;
  struct Item {
    const char* name;
    uint64_t* field;
  } items[] = {{"SLUICE_SHUTDOWN_PRE_DRAIN_MS", &shutdown.pre_drain_ms},
               {"SLUICE_SHUTDOWN_DRAIN_MS", &shutdown.drain_ms},
               {"SLUICE_SHUTDOWN_TEARDOWN_MS", &shutdown.teardown_ms}};
  for (auto& it : items) {
    const char* v = getenv_fn(it.name);
    if (v == nullptr) {
      continue;
    }
    std::string_view s(v);
    bool ok = !s.empty() && s.size() <= 20;
    uint64_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      // Stop accumulating past the cap: no overflow whatever the length.
      if (n <= kOneDay) {
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
    }
    if (!ok || n > kOneDay) {
      r.warnings.push_back(fmt::format("{}=\"{}\" ignored: expected an integer 0..{} (one day); "
                                       "keeping {}",
                                       it.name, std::string(s.substr(0, 64)), kOneDay, *it.field));
      continue;
    }
    *it.field = n;
  }
  const auto& sd = shutdown;
  if (sd.pre_drain_ms + sd.drain_ms + sd.teardown_ms > sd.grace_period_ms) {
    r.warnings.push_back(
        fmt::format("shutdown phases pre_drain_ms={} + drain_ms={} + teardown_ms={} = {} exceed "
                    "grace_period_ms={}",
                    sd.pre_drain_ms, sd.drain_ms, sd.teardown_ms,
                    sd.pre_drain_ms + sd.drain_ms + sd.teardown_ms, sd.grace_period_ms));
  }
  return r;
}

std::string redactedDump(const Config& config) {
  json root;
  try {
    root = json::parse(config.raw_json);
  } catch (...) {
    return "{}";
  }
  static const std::set<std::string> kSecretKeys = {
      "api_key", "secret", "password", "token", "k", "d", "p", "q", "dp", "dq", "qi"};
  std::function<void(json&)> walk = [&](json& v) {
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        json& child = it.value();
        bool secret_ref = child.is_object() && child.size() == 1 &&
                          (child.contains("env") || child.contains("file")) &&
                          kSecretKeys.count(it.key()) > 0;
        if (kSecretKeys.count(it.key()) > 0 && (child.is_string() || secret_ref)) {
          child = "[redacted]";
        } else if (child.is_object() && child.size() == 1 && child.contains("env")) {
          child = "[redacted]";
        } else {
          walk(child);
        }
      }
    } else if (v.is_array()) {
      for (auto& e : v) {
        walk(e);
      }
    }
  };
  walk(root);
  return root.dump(2);
}

} // namespace sluice::config
