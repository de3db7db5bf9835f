// The filter manager's iteration rules (SPEC: request hooks in chain order, response hooks in
// reverse; STOP pauses until sluice_host_continue; STOP_AND_BUFFER hands the whole body to the
// filter that asked), driven in memory: test filters against the C ABI, a fake downstream
// connection and bench mode's synthetic upstream, no sockets.
#include "core/config/config.h"
#include "core/filter/registry.h"
#include "core/filter/stream.h"
#include "test/core/filter/fake_stream_owner.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice;

namespace {

std::vector<std::string> g_trace;
const sluice_host_t* g_host = nullptr;

// Per filter: what each hook returns ("continue", "stop", "buffer" or "bad"), and whether its
// request headers hook routes the request to cluster "c".
struct IterCfg {
  std::string name;
  std::string req_headers, req_body, resp_headers, resp_body;
  bool route = false;
};

std::string modeOf(const std::string& json, const std::string& key) {
  size_t k = json.find("\"" + key + "\":\"");
  if (k == std::string::npos) {
    return "continue";
  }
  size_t b = k + key.size() + 4;
  return json.substr(b, json.find('"', b) - b);
}

void* cfgNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) {
  g_host = host;
  std::string j(json.ptr, json.len);
  auto* c = new IterCfg;
  sluice_str_t n = host->sluice_host_config_name(ctx);
  c->name.assign(n.ptr, n.len);
  c->req_headers = modeOf(j, "req_headers");
  c->req_body = modeOf(j, "req_body");
  c->resp_headers = modeOf(j, "resp_headers");
  c->resp_body = modeOf(j, "resp_body");
  c->route = j.find("\"route\":true") != std::string::npos;
  return c;
}
void cfgDestroy(void* c) {
  delete static_cast<IterCfg*>(c);
}
void* streamNew(void* cfg, void*, sluice_stream_t*) {
  return cfg; // stateless per stream
}
void streamDestroy(void*) {}

sluice_status_t statusFor(const std::string& mode, bool end, bool body) {
  if (mode == "stop") {
    return SLUICE_STATUS_STOP;
  }
  if (mode == "buffer") {
    // A body hook that buffers continues once it has the end of the body.
    return body && end ? SLUICE_STATUS_CONTINUE : SLUICE_STATUS_STOP_AND_BUFFER;
  }
  if (mode == "bad") {
    return static_cast<sluice_status_t>(99);
  }
  return SLUICE_STATUS_CONTINUE;
}

std::string bodyOf(sluice_stream_t* s, sluice_direction_t dir) {
  sluice_str_t b = g_host->sluice_host_body_get(s, dir);
  return std::string(b.ptr, b.len);
}

sluice_status_t reqHeaders(void* o, sluice_stream_t* s, bool end) {
  auto* c = static_cast<IterCfg*>(o);
  g_trace.push_back(c->name + ":req_headers" + (end ? "!" : ""));
  if (c->route) {
    sluice_route_t r{};
    r.size = sizeof(r);
    r.cluster = SLUICE_STR("c");
    REQUIRE(g_host->sluice_host_route(s, &r));
  }
  return statusFor(c->req_headers, end, false);
}
sluice_status_t bodyHook(void* o, sluice_stream_t* s, bool end, sluice_direction_t dir) {
  auto* c = static_cast<IterCfg*>(o);
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  g_trace.push_back(c->name + (request ? ":req_body(" : ":resp_body(") + bodyOf(s, dir) + ")" +
                    (end ? "!" : ""));
  return statusFor(request ? c->req_body : c->resp_body, end, true);
}
sluice_status_t reqBody(void* o, sluice_stream_t* s, bool end) {
  return bodyHook(o, s, end, SLUICE_DIRECTION_REQUEST);
}
sluice_status_t respHeaders(void* o, sluice_stream_t*, bool end) {
  auto* c = static_cast<IterCfg*>(o);
  g_trace.push_back(c->name + ":resp_headers" + (end ? "!" : ""));
  return statusFor(c->resp_headers, end, false);
}
sluice_status_t respBody(void* o, sluice_stream_t* s, bool end) {
  return bodyHook(o, s, end, SLUICE_DIRECTION_RESPONSE);
}

const sluice_filter_descriptor_t kDesc = [] {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "iter_filter";
  d.sluice_on_config_new = cfgNew;
  d.sluice_on_config_destroy = cfgDestroy;
  d.sluice_on_stream_new = streamNew;
  d.sluice_on_stream_destroy = streamDestroy;
  d.sluice_on_request_headers = reqHeaders;
  d.sluice_on_request_body = reqBody;
  d.sluice_on_response_headers = respHeaders;
  d.sluice_on_response_body = respBody;
  return d;
}();
const sluice_filter_descriptor_t* kDescs[] = {&kDesc};
const sluice_module_t kModule = {
    sizeof(sluice_module_t), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR, "iter", kDescs, 1};
const sluice_module_t* iterInit(const sluice_host_t*, uint32_t, uint32_t) {
  return &kModule;
}

using FakeOwner = test::FakeStreamOwner;

// Filters a, b, c in chain order; `modes` are each one's config objects.
filter::SnapshotPtr build(const std::string& a, const std::string& b, const std::string& c) {
  static bool registered = false;
  if (!registered) {
    static const filter::BuiltinModule mods[] = {{"iter_filter", iterInit}};
    filter::Registry::global().addBuiltins(mods, 1);
    registered = true;
  }
  std::string doc = R"({"listeners":[{"name":"l","address":"127.0.0.1:0","filters":[)"
                    R"({"type":"iter_filter","name":"a","config":)" +
                    a + R"(},{"type":"iter_filter","name":"b","config":)" + b +
                    R"(},{"type":"iter_filter","name":"c","config":)" + c +
                    R"(}]}],"clusters":[{"name":"c","endpoints":[{"address":"127.0.0.1:1"}]}]})";
  auto parsed = config::parseConfig(doc, "/tmp");
  for (auto& e : parsed.errors) {
    FAIL(e.toString());
  }
  auto r = filter::buildSnapshot(parsed.config, 1);
  REQUIRE(r.snapshot);
  return r.snapshot;
}

struct Harness {
  event::Dispatcher dispatcher;
  filter::WorkerContext worker{dispatcher, 0};
  filter::SyntheticUpstream upstream;
  FakeOwner owner;
  filter::Stream stream{worker, owner};
  http::Arena arena;
  http::Parser parser{http::MessageType::Request, arena, 65536};
  network::Buffer in, head;

  explicit Harness(filter::SnapshotPtr snap) {
    worker.install(std::move(snap));
    upstream.body = "hello";
    worker.setSyntheticUpstream(&upstream);
    g_trace.clear();
  }
  ~Harness() { worker.shutdown(); }
  void request(std::string_view raw) {
    in.append(raw);
    bool ready = false;
    auto ev = http::parseStep(parser, in, head, &ready);
    REQUIRE(ready);
    REQUIRE(ev == http::ParseEvent::HeadComplete);
    stream.begin(worker.current(), 0, parser.head(), dispatcher.nowMs());
  }
  std::string out() const { return std::string(owner.out.view()); }
};

using Trace = std::vector<std::string>;
constexpr auto kRequest = SLUICE_DIRECTION_REQUEST;
constexpr auto kResponse = SLUICE_DIRECTION_RESPONSE;

} // namespace

TEST_CASE("FilterManager: STOP on request headers pauses until resumed", "[filter]") {
  Harness h(build(R"({"route":true})", R"({"req_headers":"stop"})", "{}"));
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(g_trace == Trace{"a:req_headers!", "b:req_headers!"});
  CHECK(h.out().empty());
  SECTION("resume goes on after the paused filter") {
    h.stream.resume(kRequest);
    // The body arrives in one piece, then its end: every body hook sees both.
    CHECK(g_trace == Trace{"a:req_headers!", "b:req_headers!", "c:req_headers!",
                           "c:resp_headers", "b:resp_headers", "a:resp_headers",
                           "c:resp_body(hello)", "b:resp_body(hello)", "a:resp_body(hello)",
                           "c:resp_body()!", "b:resp_body()!", "a:resp_body()!"});
    CHECK(h.owner.done);
    CHECK(h.out().rfind("HTTP/1.1 200", 0) == 0);
  }
  SECTION("resuming the other direction does nothing") {
    h.stream.resume(kResponse);
    CHECK(g_trace.size() == 2);
    CHECK_FALSE(h.owner.done);
    h.stream.onDownstreamReset();
  }
}

TEST_CASE("FilterManager: STOP_AND_BUFFER on request headers hands that filter the whole body",
          "[filter]") {
  Harness h(build(R"({"route":true})", R"({"req_headers":"buffer"})", "{}"));
  h.request("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n");
  h.stream.onRequestData("abc");
  h.stream.onRequestData("def");
  CHECK(g_trace == Trace{"a:req_headers", "b:req_headers"});
  h.stream.onRequestEnd();
  // b gets the body once, whole; then the headers hooks after it, then the body hooks of the
  // others (b's not again).
  Trace want = {"a:req_headers", "b:req_headers", "b:req_body(abcdef)!", "c:req_headers",
                "a:req_body(abcdef)!", "c:req_body(abcdef)!"};
  REQUIRE(g_trace.size() >= want.size());
  CHECK(Trace(g_trace.begin(), g_trace.begin() + static_cast<long>(want.size())) == want);
  CHECK(h.owner.done);
}

TEST_CASE("FilterManager: STOP from a request body hook holds the request until resumed",
          "[filter]") {
  Harness h(build(R"({"route":true})", R"({"req_body":"stop"})", "{}"));
  h.request("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n");
  h.stream.onRequestData("ab");
  h.stream.onRequestData("cd");
  h.stream.onRequestEnd();
  Trace paused = {"a:req_headers", "b:req_headers", "c:req_headers", "a:req_body(abcd)!",
                  "b:req_body(abcd)!"};
  CHECK(g_trace == paused);
  CHECK(h.out().empty());
  h.stream.resume(kRequest);
  REQUIRE(g_trace.size() > paused.size());
  CHECK(g_trace[paused.size()] == "c:req_body(abcd)!");
  CHECK(h.owner.done);
  CHECK(h.out().rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("FilterManager: STOP on response headers holds the head back", "[filter]") {
  Harness h(build(R"({"route":true})", R"({"resp_headers":"stop"})", "{}"));
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(g_trace == Trace{"a:req_headers!", "b:req_headers!", "c:req_headers!", "c:resp_headers",
                         "b:resp_headers"});
  CHECK(h.out().empty());
  CHECK_FALSE(h.owner.done);
  h.stream.resume(kResponse);
  CHECK(g_trace == Trace{"a:req_headers!", "b:req_headers!", "c:req_headers!", "c:resp_headers",
                         "b:resp_headers", "a:resp_headers", "c:resp_body(hello)!",
                         "b:resp_body(hello)!", "a:resp_body(hello)!"});
  CHECK(h.owner.done);
  // The whole body was known when the head went out: it carries its length.
  CHECK(h.out().find("content-length: 5\r\n") != std::string::npos);
  CHECK(h.out().find("\r\n\r\nhello") != std::string::npos);
}

TEST_CASE("FilterManager: a response body hook's STOP_AND_BUFFER gets the whole body",
          "[filter]") {
  Harness h(build(R"({"route":true})", R"({"resp_body":"buffer"})", "{}"));
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  Trace want = {"a:req_headers!",     "b:req_headers!",      "c:req_headers!",
                "c:resp_headers",     "b:resp_headers",      "a:resp_headers",
                "c:resp_body(hello)", "b:resp_body(hello)",  "b:resp_body(hello)!",
                "a:resp_body(hello)!"};
  CHECK(g_trace == want);
  CHECK(h.out().find("content-length: 5\r\n") != std::string::npos);
  CHECK(h.owner.done);
}

TEST_CASE("FilterManager: an invalid status from a hook ends the stream with 500", "[filter]") {
  std::string hook = GENERATE("req_headers", "resp_headers");
  Harness h(build(R"({"route":true})", R"({")" + hook + R"(":"bad"})", "{}"));
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(h.owner.done);
  CHECK(h.out().rfind("HTTP/1.1 500", 0) == 0);
  CHECK(h.out().find("filter error") != std::string::npos);
}

TEST_CASE("FilterManager: the 500 for an invalid status passes every response hook; a reused "
          "stream refused before its filters run passes none",
          "[filter]") {
  Harness h(build(R"({"route":true})", R"({"req_headers":"bad"})", "{}"));
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(g_trace == Trace{"a:req_headers!", "b:req_headers!", "c:resp_headers", "b:resp_headers",
                         "a:resp_headers"});
  // The same Stream object answers the connection's next request; one refused before any
  // filter runs sees no response hooks (the previous chain is gone).
  g_trace.clear();
  h.owner.out.clear();
  h.in.clear();
  h.head.clear();
  h.parser.reset();
  h.request("GET /../x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(h.out().rfind("HTTP/1.1 400", 0) == 0);
  CHECK(g_trace.empty());
}
