// The C++ SDK (api/include/sluice/sdk/) driven through the C ABI with the in-memory host:
// JSON reader, config reader errors, generated descriptors, exceptions caught before C,
// member-function callbacks, version checks; plus ip_allowlist's address matching.

#include "extensions/ip_allowlist/ip_allowlist.cc" // also defines sluice_module_init
#include "sluice/sdk/filter.hpp"
#include "test/filters/common/fake_host.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <stdexcept>
#include <tuple>

#include <dlfcn.h>

using sluice::testing::FakeConfigCtx;
using sluice::testing::FakeHost;
using sluice::testing::FakeStream;
using sluice::testing::FakeWorker;
namespace sdk = sluice::sdk;
namespace json = sluice::sdk::json;

namespace {

// ------------------------------------------------------------------------------------------
// A test filter type: throws on demand, records callbacks.

class ProbeFilter;

class ProbeConfig {
public:
  static std::unique_ptr<ProbeConfig> create(sdk::ConfigContext& ctx) {
    auto c = std::make_unique<ProbeConfig>();
    sdk::ConfigReader r(ctx);
    json::Value root;
    if (!r.parse(root)) {
      return nullptr;
    }
    // Unknown keys are errors; reading goes on to report every mistake at once.
    r.object(root, "", {"throw", "cluster", "n", "tags"});
    bool do_throw = false;
    r.boolean(root, "", "throw", do_throw);
    if (do_throw) {
      throw std::runtime_error("boom");
    }
    r.str(root, "", "cluster", c->cluster, false, true);
    r.uint(root, "", "n", c->n, 1, 10);
    r.strings(root, "", "tags", c->tags);
    return r.ok() ? std::move(c) : nullptr;
  }
  std::unique_ptr<ProbeFilter> newFilter(sdk::Stream stream) const;

  std::string cluster = "authz";
  uint64_t n = 1;
  std::vector<std::string> tags;
};

class ProbeFilter : public sdk::Filter {
public:
  ProbeFilter(const ProbeConfig& c, sdk::Stream s) : Filter(s), config_(c) {}

  sluice_status_t onRequestHeaders(bool) override {
    std::string_view path = stream().path();
    if (path == "/throw") {
      throw std::runtime_error("hook exploded");
    }
    if (path == "/bad-status") {
      stream().sendLocalReply(42, "?");
      return sdk::kStop;
    }
    if (path == "/throw-int") {
      throw 42;
    }
    if (path == "/call") {
      sluice_header_t h[] = {sdk::header("x-a", "1")};
      call_id_ = httpCall<&ProbeFilter::onAnswer>(config_.cluster, "GET", "/check", h, {}, 100);
      return call_id_ == 0 ? sdk::kContinue : sdk::kStop;
    }
    if (path == "/timer") {
      startTimer<&ProbeFilter::onTimer>(10);
      return sdk::kStop;
    }
    if (path == "/scoped") {
      deadline_ = sdk::TimerHandle(stream(), startTimer<&ProbeFilter::onTimer>(10));
      sluice_header_t h[] = {sdk::header("x-a", "1")};
      call_ = sdk::CallHandle(
          stream(), httpCall<&ProbeFilter::onAnswer>(config_.cluster, "GET", "/check", h, {}, 100));
      return sdk::kStop;
    }
    return sdk::kContinue;
  }
  sluice_status_t onResponseHeaders(bool) override {
    stream().setHeader(SLUICE_HEADERS_RESPONSE, "x-probe", "1");
    return sdk::kContinue;
  }

  static inline int answers = 0;
  static inline int timers = 0;

private:
  void onAnswer(const sdk::HttpResponse& r) {
    answers++;
    if (r.status() == 599) {
      throw std::runtime_error("callback exploded");
    }
    stream().setHeader(SLUICE_HEADERS_REQUEST, "x-status", std::to_string(r.status()));
    stream().resume();
  }
  void onTimer() {
    timers++;
    stream().resume();
  }

  const ProbeConfig& config_;
  sluice_call_id_t call_id_ = 0;

public:
  sdk::TimerHandle deadline_;
  sdk::CallHandle call_;
};

std::unique_ptr<ProbeFilter> ProbeConfig::newFilter(sdk::Stream stream) const {
  if (stream.path() == "/create-throws") {
    throw std::runtime_error("no filter for you");
  }
  if (stream.path() == "/skip") {
    return nullptr;
  }
  return std::make_unique<ProbeFilter>(*this, stream);
}

// A filter with no overrides but request headers: body/trailer/response hooks stay NULL.
class PlainFilter;
class PlainConfig {
public:
  static std::unique_ptr<PlainConfig> create(sdk::ConfigContext&) {
    return std::make_unique<PlainConfig>();
  }
  std::unique_ptr<PlainFilter> newFilter(sdk::Stream s) const;
  void onLogReopen() { reopened++; }
  int reopened = 0;
};
class PlainFilter : public sdk::Filter {
public:
  using Filter::Filter;
};
std::unique_ptr<PlainFilter> PlainConfig::newFilter(sdk::Stream s) const {
  return std::make_unique<PlainFilter>(s);
}

// A host whose HTTP calls are captured so that the test can answer them.
struct CapturedCall {
  sluice_http_callback_t cb = nullptr;
  void* user_data = nullptr;
  std::string cluster, path;
  size_t header_count = 0;
};
CapturedCall g_call;
sluice_call_id_t captureCall(sluice_worker_t*, sluice_stream_t*, sluice_str_t cluster, sluice_str_t,
                             sluice_str_t path, const sluice_header_t*, size_t header_count,
                             sluice_str_t, uint32_t, sluice_http_callback_t cb, void* user_data) {
  g_call = CapturedCall{cb, user_data, std::string(sdk::toView(cluster)),
                        std::string(sdk::toView(path)), header_count};
  return 7;
}

std::vector<sluice_call_id_t> g_cancelled;
void recordCancel(sluice_worker_t*, sluice_call_id_t id) {
  g_cancelled.push_back(id);
}

struct Harness {
  FakeHost host;
  sluice_host_t table = *host.table();
  FakeConfigCtx ctx;
  FakeWorker worker;
  const sluice_filter_descriptor_t* d = sdk::filterType<ProbeConfig>("probe");

  Harness() {
    table.sluice_host_http_call = &captureCall;
    table.sluice_host_http_call_cancel = &recordCancel;
  }

  void* config(std::string_view json) {
    return d->sluice_on_config_new(&table, ctx.handle(), sdk::toStr(json));
  }
  FakeStream stream(std::string path) {
    FakeStream s;
    s.worker = &worker;
    s.setHeader(SLUICE_HEADERS_REQUEST, ":path", std::move(path));
    return s;
  }
};

void respond(uint32_t status) {
  sluice_http_response_t r{};
  r.size = sizeof(r);
  r.status = status;
  r.body = SLUICE_STR("ok");
  g_call.cb(g_call.user_data, &r);
}

} // namespace

TEST_CASE("SDK json: parses values, escapes and numbers", "[sdk]") {
  json::Value v;
  std::string err;
  REQUIRE(json::parse(
      R"( {"a": [1, -2, 3.5, 1e3, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "o": {}} )",
      v, err));
  REQUIRE(v.isObject());
  const json::Value* a = v.find("a");
  REQUIRE(a != nullptr);
  REQUIRE(a->size() == 7);
  CHECK(a->items()[0].isUnsigned());
  CHECK(a->items()[0].asUint() == 1);
  CHECK(a->items()[1].isInteger());
  CHECK(!a->items()[1].isUnsigned());
  CHECK(a->items()[1].asInt() == -2);
  CHECK(!a->items()[2].isInteger());
  CHECK(a->items()[2].asDouble() == 3.5);
  CHECK(a->items()[3].asDouble() == 1000);
  CHECK(a->items()[4].asBool());
  CHECK(a->items()[6].isNull());
  CHECK(v.find("s")->asString() == "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("o")->isObject());
  CHECK(v.find("missing") == nullptr);
}

TEST_CASE("SDK json: rejects malformed text with an offset", "[sdk]") {
  auto bad = GENERATE(as<std::string>{}, "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01",
                      "\"\\x\"", "\"\\ud800\"", "tru", "{\"a\":1}x", "{\"a\":1,\"a\":2}",
                      "\"a\nb\"", "-", "1.", std::string(100, '['));
  json::Value v;
  std::string err;
  CHECK_FALSE(json::parse(bad, v, err));
  CHECK(err.rfind("at offset ", 0) == 0);
}

TEST_CASE("SDK config: typed getters report errors by JSON pointer", "[sdk]") {
  Harness h;
  CHECK(h.config(R"({"cluster": 42})") == nullptr);
  REQUIRE(h.ctx.errors.size() == 1);
  CHECK(h.ctx.errors[0].first == "/cluster");
  CHECK(h.ctx.errors[0].second == "expected a string, got 42");
  h.ctx.errors.clear();
  CHECK(h.config(R"({"n": 11, "tags": ["a", 3], "nope": 1})") == nullptr);
  CHECK(h.ctx.hasError("/nope"));
  CHECK(h.ctx.hasError("/n"));
  CHECK(h.ctx.hasError("/tags/1"));
  h.ctx.errors.clear();
  CHECK(h.config("{not json") == nullptr);
  REQUIRE(h.ctx.errors.size() == 1);
  CHECK(h.ctx.errors[0].first == "");
  CHECK(h.ctx.errors[0].second.find("not valid JSON") != std::string::npos);
  h.ctx.errors.clear();
  void* c = h.config("");
  REQUIRE(c != nullptr); // empty text is an empty object
  h.d->sluice_on_config_destroy(c);
}

TEST_CASE("SDK config: an exception in the factory becomes a config error", "[sdk]") {
  Harness h;
  CHECK(h.config(R"({"throw": true})") == nullptr);
  REQUIRE(h.ctx.errors.size() == 1);
  CHECK(h.ctx.errors[0].first == "");
  CHECK(h.ctx.errors[0].second == "config failed: boom");
}

TEST_CASE("SDK descriptor: only overridden hooks are installed", "[sdk]") {
  const sluice_filter_descriptor_t* p = sdk::filterType<ProbeConfig>("probe");
  CHECK(p->size == sizeof(sluice_filter_descriptor_t));
  CHECK(std::strcmp(p->type, "probe") == 0);
  CHECK(p->sluice_on_request_headers != nullptr);
  CHECK(p->sluice_on_response_headers != nullptr);
  CHECK(p->sluice_on_request_body == nullptr); // keeps the host's body fast path
  CHECK(p->sluice_on_response_body == nullptr);
  CHECK(p->sluice_on_stream_complete == nullptr);
  CHECK(p->sluice_on_log_reopen == nullptr);
  const sluice_filter_descriptor_t* q = sdk::filterType<PlainConfig>("plain");
  CHECK(q->sluice_on_request_headers != nullptr); // always: answers for a failed creation
  CHECK(q->sluice_on_response_headers == nullptr);
  CHECK(q->sluice_on_log_reopen != nullptr);
  CHECK(sdk::filterType<ProbeConfig>("probe") == p); // one descriptor per type
}

TEST_CASE("SDK stream: hooks run, and an exception ends the stream with 500", "[sdk]") {
  Harness h;
  void* c = h.config("{}");
  REQUIRE(c != nullptr);
  SECTION("normal") {
    FakeStream s = h.stream("/ok");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    REQUIRE(f != nullptr);
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_CONTINUE);
    CHECK(h.d->sluice_on_response_headers(f, s.handle(), true) == SLUICE_STATUS_CONTINUE);
    CHECK(s.response_headers.back() == std::make_pair(std::string("x-probe"), std::string("1")));
    CHECK(s.local_replies.empty());
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("exception in a hook") {
    auto path = GENERATE(as<std::string>{}, "/throw", "/throw-int");
    FakeStream s = h.stream(path);
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    CHECK(s.local_replies == std::vector<uint32_t>{500});
    bool logged = false;
    for (const auto& [level, text] : h.host.logs()) {
      logged = logged || (level == SLUICE_LOG_ERROR &&
                          text.find("exception in on_request_headers") != std::string::npos);
    }
    CHECK(logged);
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("exception while creating the filter object fails closed") {
    FakeStream s = h.stream("/create-throws");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    REQUIRE(f != nullptr);
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    CHECK(s.local_replies == std::vector<uint32_t>{500});
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("a local reply with an invalid status becomes 500") {
    FakeStream s = h.stream("/bad-status");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    CHECK(s.local_replies == std::vector<uint32_t>{500});
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("nullptr skips the filter") {
    FakeStream s = h.stream("/skip");
    CHECK(h.d->sluice_on_stream_new(c, nullptr, s.handle()) == nullptr);
  }
  h.d->sluice_on_config_destroy(c);
}

TEST_CASE("SDK filter objects: a stream's object reuses the memory of the last one freed",
          "[sdk]") {
  Harness h;
  void* c = h.config("{}");
  REQUIRE(c != nullptr);
  FakeStream s1 = h.stream("/ok");
  FakeStream s2 = h.stream("/ok");
  void* a = h.d->sluice_on_stream_new(c, nullptr, s1.handle());
  void* b = h.d->sluice_on_stream_new(c, nullptr, s2.handle());
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(a != b); // two live streams, two objects
  h.d->sluice_on_stream_destroy(a);
  FakeStream s3 = h.stream("/ok");
  void* c3 = h.d->sluice_on_stream_new(c, nullptr, s3.handle());
  REQUIRE(c3 != nullptr);
#if SLUICE_SDK_POOL_FILTERS
  CHECK(c3 == a); // the freed block came back from this thread's pool, not from malloc
#endif
  CHECK(h.d->sluice_on_request_headers(c3, s3.handle(), true) == SLUICE_STATUS_CONTINUE);
  CHECK(h.d->sluice_on_response_headers(c3, s3.handle(), true) == SLUICE_STATUS_CONTINUE);
  CHECK(s3.response_headers.back() == std::make_pair(std::string("x-probe"), std::string("1")));
  h.d->sluice_on_stream_destroy(b);
  h.d->sluice_on_stream_destroy(c3);
  // A filter bigger than the pooled sizes is a plain heap object and still works.
  struct Big : sdk::Filter {
    using Filter::Filter;
    char payload[sdk::detail::FilterPool::kMaxBytes * 2] = {};
  };
  auto big = std::make_unique<Big>(sdk::Stream(&h.table, s1.handle(), nullptr));
  CHECK(big->payload[0] == 0);
  big.reset();
  h.d->sluice_on_config_destroy(c);
}

TEST_CASE("SDK callbacks: HTTP call and timer reach member functions", "[sdk]") {
  Harness h;
  void* c = h.config(R"({"cluster": "auth"})");
  REQUIRE(c != nullptr);
  SECTION("http call") {
    FakeStream s = h.stream("/call");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    CHECK(g_call.cluster == "auth");
    CHECK(g_call.path == "/check");
    CHECK(g_call.header_count == 1);
    int before = ProbeFilter::answers;
    respond(204);
    CHECK(ProbeFilter::answers == before + 1);
    CHECK(s.request_headers.back() == std::make_pair(std::string("x-status"), std::string("204")));
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("exception in an HTTP callback") {
    FakeStream s = h.stream("/call");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    h.d->sluice_on_request_headers(f, s.handle(), true);
    respond(599);
    CHECK(s.local_replies == std::vector<uint32_t>{500});
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("RAII handles cancel their timer and call") {
    g_cancelled.clear();
    FakeStream s = h.stream("/scoped");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    auto* probe = static_cast<ProbeFilter*>(static_cast<sdk::Filter*>(f));
    CHECK(h.worker.timers.size() == 1);
    CHECK(static_cast<bool>(probe->call_));
    probe->deadline_.cancel();
    CHECK(h.worker.timers.empty());
    probe->deadline_.cancel(); // idempotent
    sdk::CallHandle moved = std::move(probe->call_);
    CHECK(!probe->call_);
    CHECK(g_cancelled.empty());
    moved = sdk::CallHandle(); // reassigning cancels the call it held
    CHECK(g_cancelled == std::vector<sluice_call_id_t>{7});
    h.d->sluice_on_stream_destroy(f);
  }
  SECTION("timer") {
    FakeStream s = h.stream("/timer");
    void* f = h.d->sluice_on_stream_new(c, nullptr, s.handle());
    CHECK(h.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
    int before = ProbeFilter::timers;
    CHECK(h.worker.fireTimers() == 1);
    CHECK(ProbeFilter::timers == before + 1);
    h.d->sluice_on_stream_destroy(f);
  }
  h.d->sluice_on_config_destroy(c);
}

TEST_CASE("SDK module: version checks and the generated module", "[sdk]") {
  FakeHost host;
  const sluice_module_t* m =
      sluice_module_init(host.table(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
  REQUIRE(m != nullptr);
  CHECK(m->size == sizeof(sluice_module_t));
  CHECK(m->abi_major == SLUICE_ABI_VERSION_MAJOR);
  CHECK(m->abi_minor == SLUICE_ABI_VERSION_MINOR);
  CHECK(std::strcmp(m->name, "ip_allowlist") == 0);
  REQUIRE(m->filter_count == 1);
  CHECK(std::strcmp(m->filters[0]->type, "ip_allowlist") == 0);
  CHECK(sluice_module_init(host.table(), SLUICE_ABI_VERSION_MAJOR + 1, 0) == nullptr);
  bool logged = false;
  for (const auto& [level, text] : host.logs()) {
    logged = logged || text.find("major versions differ") != std::string::npos;
  }
  CHECK(logged);
  sluice_host_t small = *host.table();
  small.size = 16; // a host table from before the functions this SDK uses
  CHECK(sluice_module_init(&small, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR) == nullptr);
}

TEST_CASE("ip_allowlist: CIDR ranges, IPv4 and IPv6", "[sdk][ip_allowlist]") {
  namespace ipa = sluice::extensions::ip_allowlist;
  FakeHost host;
  FakeConfigCtx ctx;
  const sluice_filter_descriptor_t* d = sdk::filterType<ipa::AllowlistConfig>("ip_allowlist");
  void* c = d->sluice_on_config_new(
      host.table(), ctx.handle(),
      SLUICE_STR(
          R"({"allow": ["10.1.0.0/16", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108", "fe80::1"]})"));
  REQUIRE(c != nullptr);
  const auto& cfg = *static_cast<sdk::detail::ConfigHolder<ipa::AllowlistConfig>*>(c)->config;
  CHECK(cfg.allowed("10.1.255.3"));
  CHECK_FALSE(cfg.allowed("10.2.0.1"));
  CHECK(cfg.allowed("192.168.1.7"));
  CHECK_FALSE(cfg.allowed("192.168.1.8"));
  CHECK(cfg.allowed("2001:db8:ffff::1"));
  CHECK_FALSE(cfg.allowed("2001:db9::1"));
  CHECK(cfg.allowed("::ffff:10.1.2.3")); // IPv4-mapped client matches an IPv4 range
  CHECK(cfg.allowed("172.16.200.1"));    // IPv4-mapped range written in IPv6
  CHECK_FALSE(cfg.allowed("172.32.0.1"));
  CHECK(cfg.allowed("fe80::1"));
  CHECK_FALSE(cfg.allowed("fe80::2"));
  CHECK_FALSE(cfg.allowed(""));
  CHECK_FALSE(cfg.allowed("not-an-ip"));
  FakeWorker w;
  FakeStream allowed;
  allowed.worker = &w;
  allowed.client_ip = "10.1.0.9";
  CHECK(d->sluice_on_stream_new(c, nullptr, allowed.handle()) == nullptr); // no object at all
  FakeStream denied;
  denied.worker = &w;
  denied.client_ip = "8.8.8.8";
  void* f = d->sluice_on_stream_new(c, nullptr, denied.handle());
  REQUIRE(f != nullptr);
  CHECK(d->sluice_on_request_headers(f, denied.handle(), true) == SLUICE_STATUS_STOP);
  CHECK(denied.local_replies == std::vector<uint32_t>{403});
  CHECK(host.metric("sluice_ip_allowlist_denied_total") == 1);
  d->sluice_on_stream_destroy(f);
  d->sluice_on_config_destroy(c);
}

TEST_CASE("ip_allowlist: range edges, overlaps, /0 and 10,000 ranges", "[sdk][ip_allowlist]") {
  namespace ipa = sluice::extensions::ip_allowlist;
  FakeHost host;
  FakeConfigCtx ctx;
  const sluice_filter_descriptor_t* d = sdk::filterType<ipa::AllowlistConfig>("ip_allowlist");
  auto make = [&](const std::string& json) {
    return d->sluice_on_config_new(host.table(), ctx.handle(), sdk::toStr(json));
  };
  auto cfg = [](void* c) -> const ipa::AllowlistConfig& {
    return *static_cast<sdk::detail::ConfigHolder<ipa::AllowlistConfig>*>(c)->config;
  };
  // Edges of a range, nested and overlapping ranges, adjacent ranges merged.
  void* c = make(R"({"allow": ["10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.5",
                              "192.168.0.0/30", "192.168.0.2/31", "2001:db8::/127",
                              "2001:db8::ffff:0/112"]})");
  REQUIRE(c != nullptr);
  const auto& a = cfg(c);
  CHECK_FALSE(a.allowed("9.255.255.255"));
  CHECK(a.allowed("10.0.0.0"));
  CHECK(a.allowed("10.0.0.255"));
  CHECK(a.allowed("10.0.1.0")); // the adjacent /24
  CHECK(a.allowed("10.0.1.255"));
  CHECK_FALSE(a.allowed("10.0.2.0"));
  CHECK(a.allowed("192.168.0.3"));
  CHECK_FALSE(a.allowed("192.168.0.4"));
  CHECK(a.allowed("2001:db8::"));
  CHECK(a.allowed("2001:db8::1"));
  CHECK_FALSE(a.allowed("2001:db8::2"));
  CHECK(a.allowed("2001:db8::ffff:0"));
  CHECK(a.allowed("2001:db8::ffff:ffff"));
  CHECK_FALSE(a.allowed("2001:db8::1:0:0"));
  CHECK_FALSE(a.allowed("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(a.allowed("10.0.0.1.1"));
  d->sluice_on_config_destroy(c);
  // /0 covers its whole family, and only it.
  c = make(R"({"allow": ["0.0.0.0/0"]})");
  REQUIRE(c != nullptr);
  CHECK(cfg(c).allowed("0.0.0.0"));
  CHECK(cfg(c).allowed("255.255.255.255"));
  CHECK(cfg(c).allowed("::ffff:1.2.3.4"));
  CHECK_FALSE(cfg(c).allowed("2001:db8::1"));
  d->sluice_on_config_destroy(c);
  c = make(R"({"allow": ["::/0"]})");
  REQUIRE(c != nullptr);
  CHECK(cfg(c).allowed("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(cfg(c).allowed("::"));
  CHECK_FALSE(cfg(c).allowed("1.2.3.4"));
  d->sluice_on_config_destroy(c);
  // 10,000 disjoint /32s and /128s: every one found, the gaps between them not.
  std::string json = R"({"allow": [)";
  for (int i = 0; i < 5000; i++) {
    json += "\"10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".7\",";
    json += "\"2001:db8::" + std::to_string(i) + ":0\",";
  }
  json.back() = ']';
  json += "}";
  c = make(json);
  REQUIRE(c != nullptr);
  for (int i = 0; i < 5000; i += 7) {
    std::string v4 = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    REQUIRE(cfg(c).allowed(v4 + ".7"));
    REQUIRE_FALSE(cfg(c).allowed(v4 + ".6"));
    REQUIRE_FALSE(cfg(c).allowed(v4 + ".8"));
    REQUIRE(cfg(c).allowed("2001:db8::" + std::to_string(i) + ":0"));
    REQUIRE_FALSE(cfg(c).allowed("2001:db8::" + std::to_string(i) + ":1"));
  }
  d->sluice_on_config_destroy(c);
}

namespace {

// The production header_rewrite module, loaded as sluice loads it.
struct HeaderRewriteModule {
  FakeHost host;
  void* lib = dlopen(SLUICE_HEADER_REWRITE_SO, RTLD_NOW | RTLD_LOCAL);
  const sluice_filter_descriptor_t* d = nullptr;

  HeaderRewriteModule() {
    REQUIRE(lib != nullptr);
    auto init = reinterpret_cast<sluice_module_init_fn>(dlsym(lib, SLUICE_MODULE_ENTRY_SYMBOL));
    REQUIRE(init != nullptr);
    CHECK(init(host.table(), SLUICE_ABI_VERSION_MAJOR + 1, 0) == nullptr);
    const sluice_module_t* m =
        init(host.table(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    REQUIRE(m != nullptr);
    REQUIRE(m->filter_count == 1);
    d = m->filters[0];
  }
  ~HeaderRewriteModule() { dlclose(lib); }
};

} // namespace

TEST_CASE("header_rewrite: the config view accepts escapes and refuses every truncation",
          "[header_rewrite]") {
  HeaderRewriteModule mod;
  const std::string good =
      R"({"request": {"remove": ["x-b"], "set": {"x-a": "\u00e9\ud83d\ude00 ${method} $$ \"${request_header:x-in}\""}},)"
      R"( "response": {"add": {"x-c": "${status}/${metadata:k}"}}})";
  FakeConfigCtx ctx;
  void* c = mod.d->sluice_on_config_new(mod.host.table(), ctx.handle(), sdk::toStr(good));
  REQUIRE(c != nullptr);
  CHECK(ctx.errors.empty());
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  s.request_headers.emplace_back("x-b", "gone");
  s.request_headers.emplace_back("x-in", "v");
  s.metadata.emplace_back("k", "m");
  void* f = mod.d->sluice_on_stream_new(c, nullptr, s.handle());
  CHECK(mod.d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_CONTINUE);
  CHECK(s.request_headers.back() ==
        std::make_pair(std::string("x-a"), std::string("\xc3\xa9\xf0\x9f\x98\x80 GET $ \"v\"")));
  for (const auto& [n, v] : s.request_headers) {
    CHECK(n != "x-b");
  }
  s.response_status = 201;
  CHECK(mod.d->sluice_on_response_headers(f, s.handle(), true) == SLUICE_STATUS_CONTINUE);
  CHECK(s.response_headers.back() == std::make_pair(std::string("x-c"), std::string("201/m")));
  mod.d->sluice_on_config_destroy(c);

  for (size_t cut = 1; cut < good.size(); cut++) {
    FakeConfigCtx bad;
    std::string text = good.substr(0, cut);
    INFO(text);
    CHECK(mod.d->sluice_on_config_new(mod.host.table(), bad.handle(), sdk::toStr(text)) == nullptr);
    CHECK(bad.errors.size() == 1);
  }
  using namespace std::string_literals;
  for (const std::string& text :
       std::vector<std::string>{"[", "{\"request\": {\"set\": {\"x-a\": \"\\ud800\"}}}",
                                "{\"request\": {\"set\": {\"x-a\": \"\\x\"}}}", "{\"request\" {}}",
                                "{\"request\": {}} {}", "{\"request\": {}, \"request\": {}}",
                                "{\"request\": {\"set\": {\"x-a\": \"a\tb\u0001\"}}}", "nul",
                                "{\"request\": {\"set\": {\"x-a\": \"a\0b\"}}}"s}) {
    FakeConfigCtx bad;
    INFO(text);
    CHECK(mod.d->sluice_on_config_new(mod.host.table(), bad.handle(), sdk::toStr(text)) == nullptr);
    CHECK(bad.errors.size() == 1);
  }
}

TEST_CASE("header_rewrite: config errors carry the JSON pointer the host's view found",
          "[header_rewrite]") {
  HeaderRewriteModule mod;
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {R"({"request": {"set": {"x-a": 42}}})", "/request/set/x-a", "expected a string, got 42"},
      {R"({"request": {"sett": {}}})", "/request/sett",
       "unknown key (expected remove, set or add)"},
      {R"({"requests": {}})", "/requests", "unknown key (expected request or response)"},
      {R"({"request": {"remove": ["ok", 7]}})", "/request/remove/1", "expected a string, got 7"},
      {R"({"request": {"remove": ["bad name"]}})", "/request/remove/0",
       "expected a header name (an RFC 9110 token)"},
      {R"({"response": {"add": {"a~b/c": "v"}}})", "/response/add/a~0b~1c",
       "expected a header name (an RFC 9110 token)"},
      {R"({"request": {"set": {"x-a": "${status}"}}})", "/request/set/x-a",
       "${status} is only known in response headers"},
      {R"({"request": []})", "/request", "expected an object, got []"},
      {R"("text")", "", "expected an object, got \"text\""},
  };
  for (const auto& [text, pointer, message] : cases) {
    FakeConfigCtx ctx;
    INFO(text);
    CHECK(mod.d->sluice_on_config_new(mod.host.table(), ctx.handle(), sdk::toStr(text)) == nullptr);
    REQUIRE(ctx.errors.size() == 1);
    CHECK(ctx.errors[0].first == pointer);
    CHECK(ctx.errors[0].second == message);
  }
  // An empty config (and null) rewrites nothing.
  for (const std::string text : {"{}", "null"}) {
    FakeConfigCtx ctx;
    void* c = mod.d->sluice_on_config_new(mod.host.table(), ctx.handle(), sdk::toStr(text));
    CHECK(c != nullptr);
    CHECK(ctx.errors.empty());
    mod.d->sluice_on_config_destroy(c);
  }
}

namespace {

struct CountingWorker {
  explicit CountingWorker(sdk::Worker w)
      : index(w.index()), tick(w, w.startTimer(1000, &onTick, this)) {}
  static void onTick(void*) {}
  uint32_t index;
  int streams = 0;
  sdk::TimerHandle tick; // a worker-level timer, cancelled with the state
};

class WorkerFilter : public sdk::Filter {
public:
  WorkerFilter(sdk::Stream s, CountingWorker& w) : Filter(s), worker_(w) {}
  sluice_status_t onRequestHeaders(bool) override {
    stream().setHeader(SLUICE_HEADERS_REQUEST, "x-worker-streams", std::to_string(worker_.streams));
    return sdk::kContinue;
  }

private:
  CountingWorker& worker_;
};

class WorkerConfig {
public:
  static std::unique_ptr<WorkerConfig> create(sdk::ConfigContext&) {
    return std::make_unique<WorkerConfig>();
  }
  std::unique_ptr<CountingWorker> newWorker(sdk::Worker w) const {
    return std::make_unique<CountingWorker>(w);
  }
  std::unique_ptr<WorkerFilter> newFilter(sdk::Stream s, CountingWorker& w) const {
    w.streams++;
    return std::make_unique<WorkerFilter>(s, w);
  }
};

} // namespace

TEST_CASE("SDK worker state: created per worker, handed to newFilter, timers cancelled", "[sdk]") {
  FakeHost host;
  FakeConfigCtx ctx;
  FakeWorker worker;
  worker.index = 3;
  const sluice_filter_descriptor_t* d = sdk::filterType<WorkerConfig>("worker_state");
  REQUIRE(d->sluice_on_worker_new != nullptr);
  REQUIRE(d->sluice_on_worker_destroy != nullptr);
  CHECK(sdk::filterType<ProbeConfig>("probe")->sluice_on_worker_new == nullptr);
  void* c = d->sluice_on_config_new(host.table(), ctx.handle(), SLUICE_STR("{}"));
  REQUIRE(c != nullptr);
  void* ws = d->sluice_on_worker_new(c, worker.handle());
  REQUIRE(ws != nullptr);
  CHECK(static_cast<CountingWorker*>(ws)->index == 3);
  CHECK(worker.timers.size() == 1);
  for (int i = 1; i <= 2; i++) {
    FakeStream s;
    s.worker = &worker;
    void* f = d->sluice_on_stream_new(c, ws, s.handle());
    REQUIRE(f != nullptr);
    d->sluice_on_request_headers(f, s.handle(), true);
    CHECK(s.request_headers.back().second == std::to_string(i));
    d->sluice_on_stream_destroy(f);
  }
  // Without worker state (its creation failed) a stream fails closed.
  FakeStream s;
  s.worker = &worker;
  void* f = d->sluice_on_stream_new(c, nullptr, s.handle());
  CHECK(d->sluice_on_request_headers(f, s.handle(), true) == SLUICE_STATUS_STOP);
  CHECK(s.local_replies == std::vector<uint32_t>{500});
  d->sluice_on_stream_destroy(f);
  d->sluice_on_worker_destroy(c, ws);
  CHECK(worker.timers.empty());
  d->sluice_on_config_destroy(c);
}
