// The cors filter through its C ABI, on the fake host: preflights, actual requests, disallowed
// origins, regex origins, Vary and config errors.

#include "filters/cors/cors_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::testing {
namespace {

std::string headerValue(const HeaderList& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (FakeStream::iequals(n, name)) {
      return v;
    }
  }
  return "";
}
size_t headerCount(const HeaderList& h, std::string_view name) {
  size_t n = 0;
  for (const auto& e : h) {
    n += FakeStream::iequals(e.first, name) ? 1 : 0;
  }
  return n;
}

// The local reply's headers are not recorded by the fake host; this wrapper keeps them.
struct Reply {
  uint32_t status = 0;
  HeaderList headers;
};
Reply* g_reply = nullptr;
void (*g_orig_reply)(sluice_stream_t*, uint32_t, const sluice_header_t*, size_t, sluice_str_t,
                     sluice_str_t) = nullptr;
void recordReply(sluice_stream_t* s, uint32_t status, const sluice_header_t* h, size_t n,
                 sluice_str_t body, sluice_str_t details) {
  g_reply->status = status;
  g_reply->headers.clear();
  for (size_t i = 0; i < n; i++) {
    g_reply->headers.emplace_back(std::string(h[i].name.ptr, h[i].name.len),
                                  std::string(h[i].value.ptr, h[i].value.len));
  }
  g_orig_reply(s, status, h, n, body, details);
}

class CorsHarness {
public:
  CorsHarness() {
    table_ = *host.table();
    g_orig_reply = table_.sluice_host_send_local_reply;
    table_.sluice_host_send_local_reply = &recordReply;
    g_reply = &reply;
    const sluice_module_t* m =
        sluice_builtin_cors_init(&table_, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    REQUIRE(m != nullptr);
    desc = m->filters[0];
    ctx.name = "cors";
  }
  ~CorsHarness() { unload(); }

  bool load(const std::string& json) {
    unload();
    ctx.errors.clear();
    config = desc->sluice_on_config_new(&table_, ctx.handle(), {json.data(), json.size()});
    if (config != nullptr) {
      state = desc->sluice_on_worker_new(config, worker.handle());
    }
    return config != nullptr;
  }
  void unload() {
    if (config != nullptr) {
      desc->sluice_on_worker_destroy(config, state);
      desc->sluice_on_config_destroy(config);
      config = nullptr;
    }
  }

  // Runs the request hook, then (unless answered locally) the response hook on a 200.
  sluice_status_t run(FakeStream& s) {
    reply = Reply{};
    s.worker = &worker;
    void* f = desc->sluice_on_stream_new(config, state, s.handle());
    REQUIRE(f != nullptr);
    sluice_status_t st = desc->sluice_on_request_headers(f, s.handle(), true);
    if (s.local_replies.empty()) {
      s.response_headers.emplace_back(":status", "200");
      desc->sluice_on_response_headers(f, s.handle(), false);
    }
    desc->sluice_on_stream_destroy(f);
    return st;
  }

  FakeHost host;
  FakeConfigCtx ctx;
  FakeWorker worker;
  Reply reply;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;
  void* state = nullptr;

private:
  sluice_host_t table_{};
};

FakeStream preflight(const std::string& origin, const std::string& method = "PUT") {
  FakeStream s;
  s.request_headers = {{":method", "OPTIONS"},
                       {":path", "/api"},
                       {":authority", "api.example.com"},
                       {"origin", origin},
                       {"access-control-request-method", method}};
  return s;
}

FakeStream actual(const std::string& origin, const std::string& method = "GET") {
  FakeStream s;
  s.request_headers = {{":method", method}, {":path", "/api"}, {":authority", "api.example.com"}};
  if (!origin.empty()) {
    s.request_headers.emplace_back("Origin", origin);
  }
  return s;
}

const char* kFull = R"({"allow_origins": ["https://app.example.com"],
  "allow_origin_regex": ["https://[a-z]+\\.example\\.org"],
  "allow_methods": ["GET", "POST", "PUT"], "allow_headers": ["Content-Type", "authorization"],
  "expose_headers": ["x-request-id"], "max_age_s": 600, "allow_credentials": true})";

TEST_CASE("Cors: a preflight from an allowed origin is answered with 204", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(kFull));
  FakeStream s = preflight("https://app.example.com");
  CHECK(h.run(s) == SLUICE_STATUS_STOP);
  REQUIRE(s.local_replies == std::vector<uint32_t>{204});
  const HeaderList& r = h.reply.headers;
  CHECK(headerValue(r, "access-control-allow-origin") == "https://app.example.com");
  CHECK(headerValue(r, "access-control-allow-methods") == "GET, POST, PUT");
  CHECK(headerValue(r, "access-control-allow-headers") == "content-type, authorization");
  CHECK(headerValue(r, "access-control-max-age") == "600");
  CHECK(headerValue(r, "access-control-allow-credentials") == "true");
  CHECK(headerValue(r, "vary") == "Origin");
  CHECK(headerCount(r, "access-control-expose-headers") == 0);
}

TEST_CASE("Cors: regex origins must match the whole Origin", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(kFull));
  SECTION("a match") {
    FakeStream s = preflight("https://shop.example.org");
    h.run(s);
    CHECK(s.local_replies == std::vector<uint32_t>{204});
    CHECK(headerValue(h.reply.headers, "access-control-allow-origin") ==
          "https://shop.example.org");
  }
  SECTION("a longer origin that contains a match") {
    FakeStream s = preflight("https://shop.example.org.evil.net");
    CHECK(h.run(s) == SLUICE_STATUS_CONTINUE);
    CHECK(s.local_replies.empty());
  }
  SECTION("not a match") {
    FakeStream s = actual("https://SHOP.example.org");
    h.run(s);
    CHECK(headerCount(s.response_headers, "access-control-allow-origin") == 0);
  }
}

TEST_CASE("Cors: a preflight from a disallowed origin goes on as a plain request", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(kFull));
  FakeStream s = preflight("https://evil.example.net");
  CHECK(h.run(s) == SLUICE_STATUS_CONTINUE);
  CHECK(s.local_replies.empty());
  for (const auto& [n, v] : s.response_headers) {
    CHECK(n.rfind("access-control-", 0) == std::string::npos);
  }
  // The answer depends on the origin, so caches must know.
  CHECK(headerValue(s.response_headers, "vary") == "Origin");
}

TEST_CASE("Cors: OPTIONS without Access-Control-Request-Method is not a preflight", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(kFull));
  FakeStream s = actual("https://app.example.com", "OPTIONS");
  CHECK(h.run(s) == SLUICE_STATUS_CONTINUE);
  CHECK(s.local_replies.empty());
  CHECK(headerValue(s.response_headers, "access-control-allow-origin") ==
        "https://app.example.com");
}

TEST_CASE("Cors: actual responses carry the CORS headers for allowed origins", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(kFull));
  FakeStream s = actual("https://app.example.com", "POST");
  s.response_headers = {{"access-control-allow-origin", "https://upstream.example"}};
  CHECK(h.run(s) == SLUICE_STATUS_CONTINUE);
  const HeaderList& r = s.response_headers;
  CHECK(headerCount(r, "access-control-allow-origin") == 1); // replaced, not duplicated
  CHECK(headerValue(r, "access-control-allow-origin") == "https://app.example.com");
  CHECK(headerValue(r, "access-control-allow-credentials") == "true");
  CHECK(headerValue(r, "access-control-expose-headers") == "x-request-id");
  CHECK(headerValue(r, "vary") == "Origin");
  CHECK(headerCount(r, "access-control-allow-methods") == 0);
}

TEST_CASE("Cors: Vary: Origin is merged with an existing Vary", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(R"({"allow_origins": ["https://a.example"]})"));
  SECTION("another member") {
    FakeStream s = actual("https://a.example");
    s.response_headers = {{"Vary", "Accept-Encoding"}};
    h.run(s);
    CHECK(headerCount(s.response_headers, "vary") == 2);
  }
  SECTION("already there") {
    FakeStream s = actual("https://a.example");
    s.response_headers = {{"Vary", "accept-encoding, ORIGIN"}};
    h.run(s);
    CHECK(headerCount(s.response_headers, "vary") == 1);
  }
  SECTION("no Origin in the request") {
    FakeStream s = actual("");
    h.run(s);
    CHECK(headerValue(s.response_headers, "vary") == "Origin");
    CHECK(headerCount(s.response_headers, "access-control-allow-origin") == 0);
  }
}

TEST_CASE("Cors: a wildcard without credentials answers * and does not vary", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(R"({"allow_origins": ["*"], "allow_methods": ["GET"]})"));
  FakeStream p = preflight("https://anything.example");
  h.run(p);
  REQUIRE(p.local_replies == std::vector<uint32_t>{204});
  CHECK(headerValue(h.reply.headers, "access-control-allow-origin") == "*");
  CHECK(headerCount(h.reply.headers, "vary") == 0);
  CHECK(headerCount(h.reply.headers, "access-control-allow-credentials") == 0);
  CHECK(headerCount(h.reply.headers, "access-control-max-age") == 0);
  FakeStream a = actual("https://other.example");
  h.run(a);
  CHECK(headerValue(a.response_headers, "access-control-allow-origin") == "*");
  CHECK(headerCount(a.response_headers, "vary") == 0);
}

TEST_CASE("Cors: default methods and exact origins are case-normalised", "[cors]") {
  CorsHarness h;
  REQUIRE(h.load(R"({"allow_origins": ["https://App.Example.com:8443"]})"));
  FakeStream p = preflight("https://app.example.com:8443");
  h.run(p);
  REQUIRE(p.local_replies == std::vector<uint32_t>{204});
  CHECK(headerValue(h.reply.headers, "access-control-allow-methods") == "GET, HEAD, POST");
  CHECK(headerCount(h.reply.headers, "access-control-allow-headers") == 0);
}

TEST_CASE("Cors: config errors come back with JSON pointers", "[cors]") {
  CorsHarness h;
  struct Case {
    const char* json;
    const char* pointer;
  };
  auto c = GENERATE(values<Case>({
      {R"({"allow_origins": ["*"], "allow_credentials": true})", "/allow_origins/0"},
      {R"({"allow_origins": ["https://a.example"], "allow_origin_regex": ["a", "(unclosed"]})",
       "/allow_origin_regex/1"},
      {R"({"allow_origins": ["https://a.example"], "allow_methods": ["GET", "BAD METHOD"]})",
       "/allow_methods/1"},
      {R"({"allow_origins": ["https://a.example"], "allow_headers": ["x-ok", "bad:name"]})",
       "/allow_headers/1"},
      {R"({"allow_origins": ["https://a.example"], "expose_headers": [""]})", "/expose_headers/0"},
      {R"({"allow_origins": ["https://a.example"], "max_age_s": 86401})", "/max_age_s"},
      {R"({"allow_origins": ["https://a.example"], "max_age_s": -1})", "/max_age_s"},
      {R"({"allow_origins": ["https://a.example"], "allow_credential": true})",
       "/allow_credential"},
      {R"({"allow_origins": ["https://a.example/path"]})", "/allow_origins/0"},
      {R"({"allow_origins": ["a.example"]})", "/allow_origins/0"},
      {R"({"allow_origins": "https://a.example"})", "/allow_origins"},
      {R"({"allow_credentials": "yes", "allow_origins": ["https://a.example"]})",
       "/allow_credentials"},
      {R"({})", "/allow_origins"},
      {R"({"allow_origins": []})", ""},
      {R"([1])", ""},
      {R"({"allow_origins": )", ""},
  }));
  INFO(c.json);
  CHECK_FALSE(h.load(c.json));
  CHECK(h.ctx.hasError(c.pointer));
}

TEST_CASE("Cors: the module is refused on another ABI major", "[cors]") {
  FakeHost host;
  CHECK(sluice_builtin_cors_init(host.table(), SLUICE_ABI_VERSION_MAJOR + 1, 0) == nullptr);
  CHECK(sluice_builtin_cors_init(nullptr, SLUICE_ABI_VERSION_MAJOR, 0) == nullptr);
}

} // namespace
} // namespace sluice::testing
