#include "filters/router/config.h"

#include "filters/common/config_reader.h"
#include "sluice/filter.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace sluice::filters::router {

namespace {

using common::ConfigReader;
using common::Json;

std::string upperCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 32);
    }
  }
  return out;
}

// A header name the router may add or remove: visible ASCII without ':' and the separators
// that would break a header line or a list (looser than an RFC 9110 token, as it always was).
bool headerName(const std::string& name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (c <= ' ' || c >= 127 || c == ':' || c == '(' || c == ')' || c == ',' || c == '"') {
      return false;
    }
  }
  return true;
}

bool headerValue(const std::string& v) {
  return v.find_first_of("\r\n", 0) == std::string::npos && v.find('\0') == std::string::npos;
}

// The route table's own rules on top of the shared reader (types, ranges, unknown keys and the
// wording of their errors come from common::ConfigReader).
class Parser {
public:
  Parser(ConfigReader& reader, const std::function<bool(std::string_view)>& exists)
      : r_(reader), cluster_exists_(exists) {}

  std::vector<HeaderOp> headerOps(const Json& o, const std::string& ptr, const char* key) {
    std::vector<HeaderOp> ops;
    const Json* a = r_.array(o, ptr, key);
    if (a == nullptr) {
      return ops;
    }
    for (size_t i = 0; i < a->size(); i++) {
      std::string p = ptr + "/" + key + "/" + std::to_string(i);
      if (!r_.object((*a)[i], p, {"name", "value", "append"})) {
        continue;
      }
      HeaderOp op;
      if (r_.str((*a)[i], p, "name", op.name, true) && !headerName(op.name)) {
        r_.error(p + "/name", "invalid header name \"" + op.name + "\"");
      }
      if (r_.str((*a)[i], p, "value", op.value, true) && !headerValue(op.value)) {
        r_.error(p + "/value", "a header value cannot contain CR, LF or NUL");
      }
      r_.boolean((*a)[i], p, "append", op.append);
      ops.push_back(std::move(op));
    }
    return ops;
  }

  std::vector<std::string> names(const Json& o, const std::string& ptr, const char* key) {
    std::vector<std::string> out;
    const Json* a = r_.array(o, ptr, key);
    if (a == nullptr) {
      return out;
    }
    for (size_t i = 0; i < a->size(); i++) {
      const Json& v = (*a)[i];
      if (!v.is_string() || !headerName(v.get_ref<const std::string&>())) {
        r_.error(ptr + "/" + key + "/" + std::to_string(i),
                 "expected a header name, got " + ConfigReader::describe(v));
        continue;
      }
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  hs_database_t* compileOne(const std::string& pattern, const std::string& ptr) {
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    std::string anchored = "^(?:" + pattern + ")$";
    if (hs_compile(anchored.c_str(), HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY, HS_MODE_BLOCK,
                   nullptr, &db, &err) != HS_SUCCESS) {
      r_.error(ptr, "invalid or unsupported regex \"" + pattern +
                        "\": " + (err != nullptr ? err->message : "unknown error"));
      if (err != nullptr) {
        hs_free_compile_error(err);
      }
      return nullptr;
    }
    return db;
  }

  void methods(const Json& m, const std::string& mp, Route& out) {
    const Json* ms = r_.array(m, mp, "methods");
    if (ms == nullptr) {
      return;
    }
    for (size_t i = 0; i < ms->size(); i++) {
      std::string p = mp + "/methods/" + std::to_string(i);
      const Json& v = (*ms)[i];
      if (!v.is_string()) {
        r_.error(p, "expected a method name, got " + ConfigReader::describe(v));
        continue;
      }
      const std::string& method = v.get_ref<const std::string&>();
      if (!ConfigReader::isToken(method)) {
        r_.error(p, "expected a method name (an RFC 9110 token), got " + ConfigReader::describe(v));
      } else if (!knownMethod(method)) {
        const std::string upper = upperCase(method);
        r_.error(p, "unknown method " + ConfigReader::describe(v) +
                        (knownMethod(upper)
                             ? ": methods are case-sensitive, did you mean \"" + upper + "\"?"
                             : ": no request with it can reach the router (the "
                               "HTTP/1 parser refuses it)"));
      }
      out.methods.push_back(method);
    }
  }

  void match(const Json& r, const std::string& ptr, Route& out) {
    const Json* m = r_.member(r, ptr, "match", true);
    std::string mp = ptr + "/match";
    if (m == nullptr || !r_.object(*m, mp, {"prefix", "path", "regex", "methods", "headers"})) {
      return;
    }
    int kinds = 0;
    if (r_.str(*m, mp, "prefix", out.value)) {
      out.kind = Route::MatchKind::Prefix;
      kinds++;
      if (out.value.empty() || out.value[0] != '/') {
        r_.error(mp + "/prefix", "a prefix starts with \"/\"");
      }
    }
    if (r_.str(*m, mp, "path", out.value)) {
      out.kind = Route::MatchKind::Path;
      kinds++;
      if (out.value.empty() || out.value[0] != '/') {
        r_.error(mp + "/path", "a path starts with \"/\"");
      }
    }
    if (r_.str(*m, mp, "regex", out.value)) {
      out.kind = Route::MatchKind::Regex;
      kinds++;
      regex_ptrs.push_back(mp + "/regex");
      regexes.push_back(&out);
    }
    if (kinds != 1) {
      r_.error(mp, "expected exactly one of prefix, path or regex");
    }
    methods(*m, mp, out);
    out.headers = common::parseHeaderConditions(
        *m, mp, r_, [this](const std::string& pattern, const std::string& at) {
          hs_database_t* db = compileOne(pattern, at);
          if (db != nullptr) {
            header_dbs.push_back(db);
          }
          return db;
        });
  }

  void weightedClusters(const Json& wc, const std::string& ptr, Route& out) {
    if (wc.empty()) {
      r_.error(ptr + "/weighted_clusters", "expected at least one cluster");
    }
    for (size_t i = 0; i < wc.size(); i++) {
      std::string wp = ptr + "/weighted_clusters/" + std::to_string(i);
      if (!r_.object(wc[i], wp, {"cluster", "weight"})) {
        continue;
      }
      std::string c;
      uint32_t w = 0;
      if (r_.str(wc[i], wp, "cluster", c, true) && !cluster_exists_(c)) {
        r_.error(wp + "/cluster", "unknown cluster \"" + c + "\"");
      }
      r_.uint(wc[i], wp, "weight", w, 1, 1000000, true);
      out.weighted.emplace_back(c, w);
      out.total_weight += w;
    }
  }

  void redirect(const Json& rd, const std::string& rp, Route& out) {
    if (!r_.object(rd, rp, {"path", "host", "scheme", "status", "strip_query"})) {
      return;
    }
    if (r_.str(rd, rp, "path", out.redirect_path) &&
        (out.redirect_path.empty() || out.redirect_path[0] != '/' ||
         !headerValue(out.redirect_path))) {
      r_.error(rp + "/path", "expected a path starting with \"/\"");
    }
    if (r_.str(rd, rp, "host", out.redirect_host) && !headerValue(out.redirect_host)) {
      r_.error(rp + "/host", "invalid host");
    }
    if (r_.str(rd, rp, "scheme", out.redirect_scheme) && out.redirect_scheme != "http" &&
        out.redirect_scheme != "https") {
      r_.error(rp + "/scheme", "expected \"http\" or \"https\"");
    }
    out.status = 301;
    if (r_.uint(rd, rp, "status", out.status, 300, 399) &&
        !(out.status == 301 || out.status == 302 || out.status == 303 || out.status == 307 ||
          out.status == 308)) {
      r_.error(rp + "/status", "expected 301, 302, 303, 307 or 308");
    }
    r_.boolean(rd, rp, "strip_query", out.redirect_strip_query);
  }

  void retry(const Json& rt, const std::string& rp, Route& out) {
    if (!r_.object(rt, rp, {"attempts", "on", "per_try_timeout_ms"})) {
      return;
    }
    r_.uint(rt, rp, "attempts", out.retry_attempts, 0, 10);
    r_.uint(rt, rp, "per_try_timeout_ms", out.per_try_timeout_ms, 0, 86400000);
    const Json* on = r_.array(rt, rp, "on");
    if (on == nullptr) {
      if (out.retry_attempts > 0) {
        out.retry_on = SLUICE_RETRY_CONNECT_FAILURE | SLUICE_RETRY_RESET;
      }
      return;
    }
    for (size_t i = 0; i < on->size(); i++) {
      const Json& c = (*on)[i];
      std::string_view v = c.is_string() ? std::string_view(c.get_ref<const std::string&>()) : "";
      if (v == "connect-failure") {
        out.retry_on |= SLUICE_RETRY_CONNECT_FAILURE;
      } else if (v == "reset") {
        out.retry_on |= SLUICE_RETRY_RESET;
      } else if (v == "5xx") {
        out.retry_on |= SLUICE_RETRY_5XX;
      } else if (v == "timeout") {
        out.retry_on |= SLUICE_RETRY_TIMEOUT;
      } else {
        r_.error(rp + "/on/" + std::to_string(i),
                 "expected connect-failure, reset, 5xx or timeout, got " +
                     ConfigReader::describe(c));
      }
    }
  }

  void route(const Json& r, const std::string& ptr, Route& out) {
    if (!r_.object(r, ptr,
                   {"match", "cluster", "weighted_clusters", "redirect", "direct_response",
                    "strip_prefix", "prefix_rewrite", "timeout_ms", "retry",
                    "request_headers_to_add", "request_headers_to_remove",
                    "response_headers_to_add", "response_headers_to_remove", "name"})) {
      return;
    }
    r_.str(r, ptr, "name", out.name);
    match(r, ptr, out);
    int actions = 0;
    if (r_.str(r, ptr, "cluster", out.cluster)) {
      out.action = Route::Action::Cluster;
      actions++;
      if (!cluster_exists_(out.cluster)) {
        r_.error(ptr + "/cluster", "unknown cluster \"" + out.cluster + "\"");
      }
    }
    if (const Json* wc = r_.array(r, ptr, "weighted_clusters")) {
      out.action = Route::Action::Weighted;
      actions++;
      weightedClusters(*wc, ptr, out);
    }
    if (const Json* rd = r_.member(r, ptr, "redirect")) {
      out.action = Route::Action::Redirect;
      actions++;
      redirect(*rd, ptr + "/redirect", out);
    }
    if (const Json* dr = r_.member(r, ptr, "direct_response")) {
      out.action = Route::Action::Direct;
      actions++;
      std::string dp = ptr + "/direct_response";
      if (r_.object(*dr, dp, {"status", "body"})) {
        out.status = 200;
        r_.uint(*dr, dp, "status", out.status, 100, 599, true);
        r_.str(*dr, dp, "body", out.body);
      }
    }
    if (actions != 1) {
      r_.error(ptr,
               "expected exactly one of cluster, weighted_clusters, redirect, direct_response");
    }
    bool is_prefix = out.kind == Route::MatchKind::Prefix;
    if (r_.boolean(r, ptr, "strip_prefix", out.strip_prefix) && out.strip_prefix && !is_prefix) {
      r_.error(ptr + "/strip_prefix", "strip_prefix needs a prefix match");
    }
    std::string rewrite;
    if (r_.str(r, ptr, "prefix_rewrite", rewrite)) {
      if (!is_prefix) {
        r_.error(ptr + "/prefix_rewrite", "prefix_rewrite needs a prefix match");
      } else if (out.strip_prefix) {
        r_.error(ptr + "/prefix_rewrite", "use either strip_prefix or prefix_rewrite");
      } else if (rewrite.empty() || rewrite[0] != '/') {
        r_.error(ptr + "/prefix_rewrite", "expected a path starting with \"/\"");
      }
      out.prefix_rewrite = rewrite;
    }
    r_.uint(r, ptr, "timeout_ms", out.timeout_ms, 0, 86400000);
    if (const Json* rt = r_.member(r, ptr, "retry")) {
      retry(*rt, ptr + "/retry", out);
    }
    out.request_headers_to_add = headerOps(r, ptr, "request_headers_to_add");
    out.request_headers_to_remove = names(r, ptr, "request_headers_to_remove");
    out.response_headers_to_add = headerOps(r, ptr, "response_headers_to_add");
    out.response_headers_to_remove = names(r, ptr, "response_headers_to_remove");
  }

  ConfigReader& r_;
  const std::function<bool(std::string_view)>& cluster_exists_;
  std::vector<Route*> regexes;
  std::vector<std::string> regex_ptrs;
  std::vector<hs_database_t*> header_dbs;
};

int onMatch(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  auto* s = static_cast<RouteTable::Scratch*>(ctx);
  if (id < s->matched.size() && !s->matched[id]) {
    s->matched[id] = 1;
    s->touched.push_back(id);
  }
  return 0;
}

// The request methods of llhttp's HTTP table (HTTP_METHOD_MAP, llhttp 8.1): what the HTTP/1
// codec lets through. The router cannot include llhttp (filters see only the C ABI), so the
// list lives here; a method missing from it can never reach a route.
constexpr std::string_view kKnownMethods[] = {
    "DELETE",     "GET",      "HEAD",       "POST",     "PUT",    "CONNECT",   "OPTIONS",
    "TRACE",      "COPY",     "LOCK",       "MKCOL",    "MOVE",   "PROPFIND",  "PROPPATCH",
    "SEARCH",     "UNLOCK",   "BIND",       "REBIND",   "UNBIND", "ACL",       "REPORT",
    "MKACTIVITY", "CHECKOUT", "MERGE",      "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "PATCH",      "PURGE",    "MKCALENDAR", "LINK",     "UNLINK", "SOURCE"};

} // namespace

bool knownMethod(std::string_view method) {
  for (std::string_view m : kKnownMethods) {
    if (m == method) {
      return true;
    }
  }
  return false;
}

void VirtualHost::buildIndex() {
  by_segment.clear();
  generic.clear();
  for (uint32_t i = 0; i < routes.size(); i++) {
    const Route& r = routes[i];
    std::string_view v = r.value;
    bool indexed = false;
    if (r.kind != Route::MatchKind::Regex && v.size() > 1) {
      size_t slash = v.find('/', 1);
      // "/seg/..." (prefix or path) or an exact path "/seg": the first segment is fixed.
      if (slash != std::string_view::npos || r.kind == Route::MatchKind::Path) {
        std::string_view first =
            v.substr(1, slash == std::string_view::npos ? v.size() - 1 : slash - 1);
        if (!first.empty()) {
          by_segment[std::string(first)].push_back(i);
          indexed = true;
        }
      }
    }
    if (!indexed) {
      generic.push_back(i);
    }
  }
}

std::string_view hostOf(std::string_view authority, std::string& buf) {
  std::string_view h = authority;
  if (!h.empty() && h[0] == '[') {
    size_t close = h.find(']');
    if (close != std::string_view::npos) {
      h = h.substr(0, close + 1);
    }
  } else {
    size_t colon = h.rfind(':');
    if (colon != std::string_view::npos) {
      h = h.substr(0, colon);
    }
  }
  bool has_upper = false;
  for (char c : h) {
    has_upper |= (c >= 'A' && c <= 'Z');
  }
  if (!has_upper) {
    return h;
  }
  buf.assign(h);
  for (char& c : buf) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return buf;
}

RouteTable::~RouteTable() {
  if (db_ != nullptr) {
    hs_free_database(db_);
  }
  if (proto_scratch_ != nullptr) {
    hs_free_scratch(proto_scratch_);
  }
  for (hs_database_t* d : header_dbs_) {
    hs_free_database(d);
  }
}

std::unique_ptr<RouteTable> RouteTable::parse(
    std::string_view text, const std::function<bool(std::string_view)>& cluster_exists,
    common::ConfigReader& reader, const std::function<void(const std::string&)>& progress) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  Clock::time_point last_report = started;
  size_t routes_total = 0;
  size_t routes_done = 0;
  bool reported = false; // a progress line went out: the end is reported too
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  };
  Json root;
  if (!reader.parse(sluice_str_t{text.data(), text.size()}, root) ||
      !reader.object(root, "", {"virtual_hosts"})) {
    return nullptr;
  }
  const Json* vhs = reader.array(root, "", "virtual_hosts", true);
  if (vhs == nullptr) {
    return nullptr;
  }
  auto table = std::make_unique<RouteTable>();
  Parser p(reader, cluster_exists);
  table->vhosts_.resize(vhs->size());
  for (const Json& v : *vhs) {
    if (auto rs = v.find("routes"); rs != v.end() && rs->is_array()) {
      routes_total += rs->size();
    }
  }
  std::set<std::string> domains_seen;
  for (size_t i = 0; i < vhs->size(); i++) {
    std::string vp = "/virtual_hosts/" + std::to_string(i);
    const Json& v = (*vhs)[i];
    VirtualHost& vh = table->vhosts_[i];
    if (!reader.object(v, vp,
                       {"name", "domains", "routes", "request_headers_to_add",
                        "response_headers_to_add", "response_headers_to_remove"})) {
      continue;
    }
    reader.str(v, vp, "name", vh.name, true);
    if (const Json* ds = reader.array(v, vp, "domains", true)) {
      if (ds->empty()) {
        reader.error(vp + "/domains", "expected at least one domain");
      }
      for (size_t j = 0; j < ds->size(); j++) {
        std::string dp = vp + "/domains/" + std::to_string(j);
        const Json& dv = (*ds)[j];
        if (!dv.is_string() || dv.get_ref<const std::string&>().empty()) {
          reader.error(dp, dv.is_string() ? "expected a domain name, got \"\""
                                          : "expected a string, got " + ConfigReader::describe(dv));
          continue;
        }
        std::string d = ConfigReader::lower(dv.get_ref<const std::string&>());
        if (!domains_seen.insert(d).second) {
          reader.error(dp, "domain \"" + d + "\" is already used by another virtual host");
          continue;
        }
        const VirtualHost* ptr = &vh;
        if (d == "*") {
          table->default_ = ptr;
        } else if (d.rfind("*.", 0) == 0 || (d[0] == '*' && d.size() > 1)) {
          table->suffixes_.add(d.substr(1), ptr);
        } else if (d.size() > 1 && d.back() == '*') {
          table->prefixes_.add(d.substr(0, d.size() - 1), ptr);
        } else if (d.find('*') != std::string::npos) {
          reader.error(dp, "a wildcard is only allowed at the start or the end of a domain");
        } else {
          table->exact_[d] = ptr;
        }
      }
    }
    vh.request_headers_to_add = p.headerOps(v, vp, "request_headers_to_add");
    vh.response_headers_to_add = p.headerOps(v, vp, "response_headers_to_add");
    vh.response_headers_to_remove = p.names(v, vp, "response_headers_to_remove");
    if (const Json* rs = reader.array(v, vp, "routes", true)) {
      vh.routes.resize(rs->size());
      for (size_t j = 0; j < rs->size(); j++) {
        Route& r = vh.routes[j];
        p.route((*rs)[j], vp + "/routes/" + std::to_string(j), r);
        if (r.name.empty()) {
          r.name = vh.name + "/" + std::to_string(j);
        }
        vh.has_regex |= r.kind == Route::MatchKind::Regex;
        routes_done++;
        // Every 10000 routes, or every second when it goes slower than that.
        if (progress &&
            ((routes_done % 10000) == 0 ||
             ((routes_done & 255) == 0 && Clock::now() - last_report >= std::chrono::seconds(1)))) {
          last_report = Clock::now();
          reported = true;
          progress("building config: compiled " + std::to_string(routes_done) + "/" +
                   std::to_string(routes_total) + " routes");
        }
      }
    }
    vh.buildIndex();
  }
  table->header_dbs_ = p.header_dbs;
  table->suffixes_.finish();
  table->prefixes_.finish();

  // Every path regex of the table in one database, compiled once.
  if (!p.regexes.empty() && reader.ok()) {
    std::vector<std::string> patterns;
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (size_t i = 0; i < p.regexes.size(); i++) {
      patterns.push_back("^(?:" + p.regexes[i]->value + ")$");
      p.regexes[i]->regex_id = static_cast<unsigned>(i);
    }
    for (size_t i = 0; i < patterns.size(); i++) {
      exprs.push_back(patterns[i].c_str());
      flags.push_back(HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY);
      ids.push_back(static_cast<unsigned>(i));
    }
    // One Hyperscan compile cannot report progress: a large one is announced, and a watcher
    // says every few seconds that it is still running.
    std::mutex mu;
    std::condition_variable cv;
    bool compiled = false;
    std::thread watcher;
    if (progress && (patterns.size() >= 1000 || elapsed_ms() >= 1000)) {
      reported = true;
      progress("building config: compiling " + std::to_string(patterns.size()) +
               " route regexes into one database");
      watcher = std::thread([&] {
        std::unique_lock<std::mutex> lock(mu);
        const Clock::time_point t0 = Clock::now();
        while (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return compiled; })) {
          progress(
              "building config: still compiling " + std::to_string(patterns.size()) +
              " route regexes (" +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0).count()) +
              " s)");
        }
      });
    }
    hs_compile_error_t* err = nullptr;
    hs_error_t rc = hs_compile_multi(exprs.data(), flags.data(), ids.data(),
                                     static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr,
                                     &table->db_, &err);
    if (watcher.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        compiled = true;
      }
      cv.notify_all();
      watcher.join();
    }
    if (rc != HS_SUCCESS) {
      std::string where = err != nullptr && err->expression >= 0 &&
                                  static_cast<size_t>(err->expression) < p.regex_ptrs.size()
                              ? p.regex_ptrs[static_cast<size_t>(err->expression)]
                              : "";
      std::string pattern = err != nullptr && err->expression >= 0 &&
                                    static_cast<size_t>(err->expression) < p.regexes.size()
                                ? p.regexes[static_cast<size_t>(err->expression)]->value
                                : "";
      reader.error(where, "invalid or unsupported regex \"" + pattern +
                              "\": " + (err != nullptr ? err->message : "unknown error"));
      if (err != nullptr) {
        hs_free_compile_error(err);
      }
    } else {
      table->regex_count_ = patterns.size();
      hs_alloc_scratch(table->db_, &table->proto_scratch_);
    }
  }
  for (hs_database_t* d : table->header_dbs_) {
    hs_alloc_scratch(d, &table->proto_scratch_);
  }
  if (!reader.ok()) {
    return nullptr;
  }
  if (progress && (reported || elapsed_ms() >= 1000)) {
    progress("building config: compiled " + std::to_string(routes_done) + " routes (" +
             std::to_string(table->regex_count_) + " regexes) in " + std::to_string(elapsed_ms()) +
             " ms");
  }
  return table;
}

std::unique_ptr<RouteTable::Scratch> RouteTable::newScratch() const {
  auto s = std::make_unique<Scratch>();
  if (proto_scratch_ != nullptr) {
    hs_clone_scratch(proto_scratch_, &s->hs);
  }
  s->matched.assign(regex_count_ + 1, 0);
  s->touched.reserve(regex_count_ + 1);
  return s;
}

const VirtualHost* RouteTable::findVirtualHost(std::string_view authority) const {
  std::string buf;
  std::string_view host = hostOf(authority, buf);
  if (!exact_.empty()) {
    auto it = exact_.find(host);
    if (it != exact_.end()) {
      return it->second;
    }
  }
  for (size_t len : suffixes_.lengths) {
    if (host.size() > len) {
      auto it = suffixes_.by_text.find(host.substr(host.size() - len));
      if (it != suffixes_.by_text.end()) {
        return it->second;
      }
    }
  }
  for (size_t len : prefixes_.lengths) {
    if (host.size() > len) {
      auto it = prefixes_.by_text.find(host.substr(0, len));
      if (it != prefixes_.by_text.end()) {
        return it->second;
      }
    }
  }
  return default_;
}

void RouteTable::Affixes::add(std::string text, const VirtualHost* vh) {
  lengths.push_back(text.size());
  by_text.emplace(std::move(text), vh); // the first virtual host with it wins
}

void RouteTable::Affixes::finish() {
  std::sort(lengths.begin(), lengths.end(), std::greater<>());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
}

bool RouteTable::scanRegexes(std::string_view path, Scratch& scratch) const {
  if (db_ == nullptr || scratch.hs == nullptr) {
    return false;
  }
  return hs_scan(db_, path.data(), static_cast<unsigned>(path.size()), 0, scratch.hs, onMatch,
                 &scratch) == HS_SUCCESS;
}

} // namespace sluice::filters::router
