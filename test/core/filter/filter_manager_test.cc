// The filter manager driven in memory: test filters written against the C ABI, a fake
// downstream connection, no sockets.
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

struct TestCfg {
  std::string name;
  std::string mode; // "pass", "reply", "stop", "meta"
  // "reply": the content-type the reply passes ("" = none in the list, "-" = an empty value);
  // "pass": what the response hook does to the content-type ("strip" removes it).
  std::string content_type;
};

// The value of "content_type" in a test filter's config, or "".
std::string contentTypeOf(const std::string& j) {
  size_t k = j.find("\"content_type\":\"");
  if (k == std::string::npos) {
    return "";
  }
  size_t start = k + 16;
  return j.substr(start, j.find('"', start) - start);
}

void* cfgNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) {
  g_host = host;
  std::string j(json.ptr, json.len);
  auto* c = new TestCfg;
  sluice_str_t n = host->sluice_host_config_name(ctx);
  c->name.assign(n.ptr, n.len);
  if (j.find("\"reply\"") != std::string::npos) {
    c->mode = "reply";
  } else if (j.find("\"stop\"") != std::string::npos) {
    c->mode = "stop";
  } else if (j.find("\"bad\"") != std::string::npos) {
    host->sluice_host_config_error(ctx, SLUICE_STR("/mode"), SLUICE_STR("bad mode"));
    delete c;
    return nullptr;
  } else {
    c->mode = "pass";
  }
  c->content_type = contentTypeOf(j);
  return c;
}
void cfgDestroy(void* c) {
  delete static_cast<TestCfg*>(c);
}
struct Obj {
  TestCfg* cfg;
  sluice_stream_t* s;
};
void* streamNew(void* cfg, void*, sluice_stream_t* s) {
  return new Obj{static_cast<TestCfg*>(cfg), s};
}
void streamDestroy(void* o) {
  g_trace.push_back("destroy:" + static_cast<Obj*>(o)->cfg->name);
  delete static_cast<Obj*>(o);
}
sluice_status_t reqHeaders(void* o, sluice_stream_t* s, bool) {
  auto* f = static_cast<Obj*>(o);
  g_trace.push_back("req:" + f->cfg->name);
  g_host->sluice_host_metadata_set(s, SLUICE_STR("seen"),
                                   {f->cfg->name.data(), f->cfg->name.size()});
  if (f->cfg->mode == "reply") {
    const std::string& ct = f->cfg->content_type;
    sluice_header_t h[2] = {{SLUICE_STR("x-reply"), SLUICE_STR("yes")},
                            {SLUICE_STR("Content-Type"), SLUICE_STR("")}};
    if (ct != "-") {
      h[1].value = {ct.data(), ct.size()};
    }
    g_host->sluice_host_send_local_reply(s, 418, h, ct.empty() ? 1 : 2, SLUICE_STR("teapot\n"),
                                         SLUICE_STR(""));
    return SLUICE_STATUS_STOP;
  }
  if (f->cfg->mode == "stop") {
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}
sluice_status_t respHeaders(void* o, sluice_stream_t* s, bool) {
  auto* f = static_cast<Obj*>(o);
  g_trace.push_back("resp:" + f->cfg->name);
  g_host->sluice_host_header_add(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("x-filter"),
                                 {f->cfg->name.data(), f->cfg->name.size()});
  if (f->cfg->content_type == "strip") {
    g_host->sluice_host_header_remove(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("content-type"));
  }
  return SLUICE_STATUS_CONTINUE;
}
void complete(void* o, sluice_stream_t* s) {
  auto* f = static_cast<Obj*>(o);
  sluice_stream_info_t info{};
  info.size = sizeof(info);
  g_host->sluice_host_stream_info(s, &info);
  g_trace.push_back("log:" + f->cfg->name + ":" + std::to_string(info.response_status));
}

const sluice_filter_descriptor_t kDesc = [] {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "test_filter";
  d.sluice_on_config_new = cfgNew;
  d.sluice_on_config_destroy = cfgDestroy;
  d.sluice_on_stream_new = streamNew;
  d.sluice_on_stream_destroy = streamDestroy;
  d.sluice_on_request_headers = reqHeaders;
  d.sluice_on_response_headers = respHeaders;
  d.sluice_on_stream_complete = complete;
  return d;
}();
const sluice_filter_descriptor_t* kDescs[] = {&kDesc};
const sluice_module_t kModule = {
    sizeof(sluice_module_t), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR, "test", kDescs, 1};
const sluice_module_t* testInit(const sluice_host_t*, uint32_t, uint32_t) {
  return &kModule;
}

using FakeOwner = test::FakeStreamOwner;

std::shared_ptr<const config::Config> makeConfig(const std::string& filters) {
  std::string doc = R"({"listeners":[{"name":"l","address":"127.0.0.1:0","filters":[)" + filters +
                    R"(]}],"clusters":[{"name":"c","endpoints":[{"address":"127.0.0.1:1"}]}]})";
  auto r = config::parseConfig(doc, "/tmp");
  for (auto& e : r.errors) {
    FAIL(e.toString());
  }
  return r.config;
}

struct Harness {
  event::Dispatcher dispatcher;
  filter::WorkerContext worker{dispatcher, 0};
  FakeOwner owner;
  filter::Stream stream{worker, owner};
  http::Arena arena;
  http::Parser parser{http::MessageType::Request, arena, 65536};
  network::Buffer in, head;

  explicit Harness(filter::SnapshotPtr snap) { worker.install(std::move(snap)); }
  ~Harness() { worker.shutdown(); }
  void request(std::string_view raw) {
    in.append(raw);
    bool ready = false;
    auto ev = http::parseStep(parser, in, head, &ready);
    REQUIRE(ready);
    REQUIRE(ev == http::ParseEvent::HeadComplete);
    stream.begin(worker.current(), 0, parser.head(), dispatcher.nowMs());
  }
};

filter::SnapshotPtr build(const std::string& filters, std::vector<config::ConfigError>* errors) {
  static bool registered = false;
  if (!registered) {
    static const filter::BuiltinModule mods[] = {{"test_filter", testInit}};
    filter::Registry::global().addBuiltins(mods, 1);
    registered = true;
  }
  auto r = filter::buildSnapshot(makeConfig(filters), 1);
  if (errors != nullptr) {
    *errors = r.errors;
  }
  return r.snapshot;
}

} // namespace

TEST_CASE("FilterManager: request hooks in order, response hooks in reverse", "[filter]") {
  g_trace.clear();
  auto snap = build(R"({"type":"test_filter","name":"a","config":{}},)"
                    R"({"type":"test_filter","name":"b","config":{}},)"
                    R"({"type":"test_filter","name":"c","config":{"mode":"reply"}})",
                    nullptr);
  REQUIRE(snap);
  {
    Harness h(snap);
    h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(h.owner.done);
    std::string out(h.owner.out.view());
    CHECK(out.rfind("HTTP/1.1 418", 0) == 0);
    CHECK(out.find("x-reply: yes") != std::string::npos);
    CHECK(out.find("teapot") != std::string::npos);
    // Response hooks ran for the filters before the replying one, in reverse order.
    CHECK(out.find("x-filter: b") < out.find("x-filter: a"));
    CHECK(out.find("x-filter: c") == std::string::npos);
    std::vector<std::string> want = {"req:a",     "req:b",     "req:c",     "resp:b",
                                     "resp:a",    "log:a:418", "log:b:418", "log:c:418",
                                     "destroy:a", "destroy:b", "destroy:c"};
    CHECK(g_trace == want);
  }
}

TEST_CASE("FilterManager: no route is a 404 with the request id echoed", "[filter]") {
  g_trace.clear();
  auto snap = build(R"({"type":"test_filter","name":"a","config":{}})", nullptr);
  Harness h(snap);
  h.request("GET /x HTTP/1.1\r\nHost: h\r\nx-request-id: abc-123\r\n\r\n");
  std::string out(h.owner.out.view());
  CHECK(out.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(out.find("x-request-id: abc-123") != std::string::npos);
  CHECK(out.find("via: 1.1 sluice") != std::string::npos);
}

TEST_CASE("FilterManager: a path escaping the root is a 400 before any filter", "[filter]") {
  g_trace.clear();
  auto snap = build(R"({"type":"test_filter","name":"a","config":{}})", nullptr);
  Harness h(snap);
  h.request("GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string out(h.owner.out.view());
  CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(h.owner.closed);
  CHECK(g_trace.empty());
}

TEST_CASE("FilterManager: a filter config error carries the filter's JSON pointer", "[filter]") {
  std::vector<config::ConfigError> errors;
  auto snap = build(R"({"type":"test_filter","name":"a","config":{}},)"
                    R"({"type":"test_filter","name":"b","config":{"mode":"bad"}})",
                    &errors);
  CHECK_FALSE(snap);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/0/filters/1/config/mode");
  CHECK(errors[0].message == "bad mode");
}

TEST_CASE("FilterManager: an unknown filter type is a config error", "[filter]") {
  std::vector<config::ConfigError> errors;
  auto snap = build(R"({"type":"nope","config":{}})", &errors);
  CHECK_FALSE(snap);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/0/filters/0/type");
}

TEST_CASE("FilterManager: a stopped stream logs once when the client goes away", "[filter]") {
  g_trace.clear();
  auto snap = build(R"({"type":"test_filter","name":"a","config":{"mode":"stop"}})", nullptr);
  Harness h(snap);
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK_FALSE(h.owner.done);
  h.stream.onDownstreamReset();
  CHECK(h.owner.done);
  std::vector<std::string> want = {"req:a", "log:a:0", "destroy:a"};
  CHECK(g_trace == want);
}

TEST_CASE("FilterManager: a local reply's body is text/plain unless a filter set or removed the "
          "content-type",
          "[filter]") {
  struct Case {
    const char* filters;
    std::vector<std::string> want; // the content-type lines that go out
  };
  auto c = GENERATE(
      // No content-type in the reply: the host's default.
      Case{R"({"type":"test_filter","name":"r","config":{"mode":"reply"}})",
           {"content-type: text/plain"}},
      // The replying filter's own content-type replaces the default: only one goes out.
      Case{
          R"({"type":"test_filter","name":"r","config":{"mode":"reply","content_type":"application/json"}})",
          {"Content-Type: application/json"}},
      // An empty value removes it: no content-type at all (an empty one is never sent).
      Case{R"({"type":"test_filter","name":"r","config":{"mode":"reply","content_type":"-"}})", {}},
      // A filter before the replying one removes the default in its response hook.
      Case{R"({"type":"test_filter","name":"a","config":{"content_type":"strip"}},)"
           R"({"type":"test_filter","name":"r","config":{"mode":"reply"}})",
           {}});
  g_trace.clear();
  auto snap = build(c.filters, nullptr);
  REQUIRE(snap);
  Harness h(snap);
  h.request("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(h.owner.done);
  std::string out(h.owner.out.view());
  INFO(out);
  CHECK(out.rfind("HTTP/1.1 418", 0) == 0);
  CHECK(out.find("\r\ncontent-length: 7\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - 7) == "teapot\n");
  std::vector<std::string> got;
  for (size_t at = 0; (at = out.find("\r\n", at)) != std::string::npos && at + 2 < out.size();) {
    at += 2;
    std::string line = out.substr(at, out.find("\r\n", at) - at);
    if (line.size() >= 13 && http::iequals(line.substr(0, 13), "content-type:")) {
      got.push_back(line);
    }
  }
  CHECK(got == c.want);
}
