// The access_log filter through its C ABI, on the fake host: module entry, config errors, the
// stream-complete hook, `when`, the flush timer and the worker-buffer -> writer-thread path.

#include "test/filters/access_log/harness.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

namespace sluice::testing {
namespace {

using Json = nlohmann::json;

std::string fileConfig(const std::string& path, const std::string& extra = "") {
  return R"({"path": ")" + path + "\"" + (extra.empty() ? "" : ", " + extra) + "}";
}

FakeStream requestStream(const std::string& id) {
  FakeStream s;
  s.request_id = id;
  return s;
}

TEST_CASE("AccessLog: the module exports one access_log descriptor", "[access_log]") {
  FakeHost host;
  const sluice_module_t* m = sluice_builtin_access_log_init(host.table(), SLUICE_ABI_VERSION_MAJOR,
                                                            SLUICE_ABI_VERSION_MINOR);
  REQUIRE(m != nullptr);
  CHECK(m->size == sizeof(sluice_module_t));
  CHECK(m->abi_major == SLUICE_ABI_VERSION_MAJOR);
  CHECK(m->abi_minor == SLUICE_ABI_VERSION_MINOR);
  CHECK(std::string(m->name) == "access_log");
  REQUIRE(m->filter_count == 1);
  const sluice_filter_descriptor_t* d = m->filters[0];
  CHECK(d->size == sizeof(sluice_filter_descriptor_t));
  CHECK(std::string(d->type) == "access_log");
  CHECK(d->sluice_on_config_new != nullptr);
  CHECK(d->sluice_on_stream_new != nullptr);
  CHECK(d->sluice_on_stream_complete != nullptr);
  CHECK(d->sluice_on_worker_new != nullptr);
  CHECK(d->sluice_on_worker_destroy != nullptr);
  CHECK(d->sluice_on_log_reopen != nullptr);
  // Only the log hook is needed: nothing runs on the request or response path.
  CHECK(d->sluice_on_request_headers == nullptr);
  CHECK(d->sluice_on_response_headers == nullptr);
}

TEST_CASE("AccessLog: another ABI major or a short host table is refused", "[access_log]") {
  FakeHost host;
  CHECK(sluice_builtin_access_log_init(host.table(), SLUICE_ABI_VERSION_MAJOR + 1, 0) == nullptr);
  REQUIRE_FALSE(host.logs().empty());
  CHECK_THAT(host.logs().back().second, Catch::Contains("host is 2.0"));

  sluice_host_t small = *host.table();
  small.size = offsetof(sluice_host_t, sluice_host_metadata_at);
  CHECK(sluice_builtin_access_log_init(&small, SLUICE_ABI_VERSION_MAJOR, 0) == nullptr);
  CHECK(sluice_builtin_access_log_init(nullptr, SLUICE_ABI_VERSION_MAJOR, 0) == nullptr);
}

TEST_CASE("AccessLog: config errors come back through the host with JSON pointers",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  h.ctx.base_dir = dir.path();

  SECTION("unknown keys and bad values") {
    CHECK_FALSE(h.load(R"({"path": "stdout", "fromat": "json", "when": {"sample": 2}})"));
    REQUIRE(h.ctx.errors.size() == 2);
    CHECK(h.ctx.errors[0].first == "/fromat");
    CHECK(h.ctx.errors[1].first == "/when/sample");
  }
  SECTION("an unknown template command") {
    CHECK_FALSE(h.load(R"({"format": {"template": "%STATUS% %BOGUS%"}})"));
    REQUIRE(h.ctx.errors.size() == 1);
    CHECK(h.ctx.errors[0].first == "/format/template");
    CHECK_THAT(h.ctx.errors[0].second, Catch::Contains("%BOGUS%"));
  }
  SECTION("a file that cannot be opened") {
    CHECK_FALSE(h.load(fileConfig("/nonexistent-dir/x.log")));
    REQUIRE(h.ctx.errors.size() == 1);
    CHECK(h.ctx.errors[0].first == "/path");
    CHECK_THAT(h.ctx.errors[0].second, Catch::Contains("cannot open \"/nonexistent-dir/x.log\"") &&
                                           Catch::Contains("No such file or directory"));
  }
  SECTION("a directory is not a log file") {
    CHECK_FALSE(h.load(fileConfig(dir.path())));
    REQUIRE(h.ctx.errors.size() == 1);
    CHECK(h.ctx.errors[0].first == "/path");
  }
  SECTION("the file is checked even when other keys are wrong") {
    CHECK_FALSE(h.load(fileConfig("missing/x.log", R"("flush_ms": 0)")));
    REQUIRE(h.ctx.errors.size() == 2);
    CHECK(h.ctx.hasError("/flush_ms"));
    CHECK(h.ctx.hasError("/path"));
    CHECK_THAT(h.ctx.errors[1].second, Catch::Contains(dir.path() + "/missing/x.log"));
  }
  SECTION("a path that does not fit after resolution") {
    CHECK_FALSE(h.load(fileConfig(std::string(5000, 'a'))));
    REQUIRE(h.ctx.errors.size() == 1);
    CHECK(h.ctx.errors[0].first == "/path");
  }
}

TEST_CASE("AccessLog: a relative path resolves against the config folder and is created at load",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  h.ctx.base_dir = dir.path();
  REQUIRE(h.load(fileConfig("access.log")));
  CHECK(std::filesystem::exists(dir.file("access.log")));
  CHECK(std::filesystem::file_size(dir.file("access.log")) == 0);
}

TEST_CASE("AccessLog: the check phase creates no file; sluice_on_config_start opens it",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  h.ctx.base_dir = dir.path();
  REQUIRE(h.load(fileConfig("access.log"), /*check_only=*/true));
  CHECK_FALSE(std::filesystem::exists(dir.file("access.log")));
  REQUIRE(h.desc->sluice_on_config_start != nullptr);
  REQUIRE(h.desc->sluice_on_config_start(h.config));
  CHECK(std::filesystem::exists(dir.file("access.log")));
  // A checked config that never starts is destroyed cleanly (validate, a failed load).
  REQUIRE(h.load(fileConfig("other.log"), /*check_only=*/true));
  h.destroyConfig();
  CHECK_FALSE(std::filesystem::exists(dir.file("other.log")));
}

TEST_CASE("AccessLog: a file removed between check and start fails the start, not the process",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  std::filesystem::create_directory(dir.file("sub"));
  h.ctx.base_dir = dir.path();
  REQUIRE(h.load(fileConfig("sub/access.log"), /*check_only=*/true));
  std::filesystem::remove(dir.file("sub"));
  CHECK_FALSE(h.desc->sluice_on_config_start(h.config));
  bool logged = false;
  for (const auto& [level, text] : h.host.logs()) {
    logged = logged || (level == SLUICE_LOG_ERROR && text.find("cannot open") != std::string::npos);
  }
  CHECK(logged);
}

TEST_CASE("AccessLog: stdout and stderr configs load", "[access_log]") {
  AccessLogHarness h;
  CHECK(h.load(R"({"path": "stdout"})"));
  CHECK(h.load(R"({"path": "stderr", "format": "combined"})"));
  CHECK(h.load(R"({})"));
  CHECK(h.ctx.errors.empty());
}

TEST_CASE("AccessLog: metrics are defined per filter instance", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  h.ctx.name = "edge_log";
  REQUIRE(h.load(fileConfig(dir.file("a.log"))));
  std::set<std::string> names;
  for (const FakeMetric& m : h.host.metrics()) {
    CHECK(m.type == SLUICE_METRIC_COUNTER);
    CHECK(m.labels == std::vector<std::pair<std::string, std::string>>{{"filter", "edge_log"}});
    names.insert(m.name);
  }
  CHECK(names == std::set<std::string>{"sluice_access_log_lines_total",
                                       "sluice_access_log_dropped_lines_total",
                                       "sluice_access_log_write_errors_total"});
}

TEST_CASE("AccessLog: one JSON line per stream from stream info, headers and metadata",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("access.log");
  REQUIRE(h.load(fileConfig(path)));
  h.addWorker();
  FakeStream s;
  s.request_id = "abc-123";
  s.client_address = "10.1.2.3:4444";
  s.client_ip = "10.1.2.3";
  s.request_headers = {{":method", "POST"},
                       {":path", "/v1/items?x=1"},
                       {":authority", "api.example.com"},
                       {"User-Agent", "GPTBot/1.0 \"quoted\""},
                       {"referer", "https://r.example/"}};
  s.response_status = 201;
  s.response_flags = SLUICE_FLAG_UPSTREAM_RESET | SLUICE_FLAG_NO_HEALTHY_UPSTREAM;
  s.bytes_in = 5;
  s.bytes_out = 42;
  s.duration_us = 2500;
  s.upstream_duration_us = 2000;
  s.upstream_cluster = "api";
  s.upstream_endpoint = "10.0.0.9:80";
  s.metadata = {{"ai.agent", "GPTBot"}, {"ai.provider", "OpenAI"}, {"ai.purpose", "training"}};
  h.complete(s);
  h.destroyConfig();

  const auto lines = readLines(path);
  REQUIRE(lines.size() == 1);
  const Json j = Json::parse(lines[0]);
  CHECK(j == Json::parse(R"({"time": "2025-11-24T16:00:00.123Z", "request_id": "abc-123",
      "client": "10.1.2.3:4444", "method": "POST", "authority": "api.example.com",
      "path": "/v1/items?x=1", "protocol": "HTTP/1.1", "status": 201, "bytes_in": 5,
      "bytes_out": 42, "duration_ms": 2.5, "upstream_cluster": "api",
      "upstream_endpoint": "10.0.0.9:80", "upstream_ms": 2.0, "flags": ["UR", "UH"],
      "user_agent": "GPTBot/1.0 \"quoted\"", "ai.agent": "GPTBot", "ai.provider": "OpenAI",
      "ai.purpose": "training"})"));
}

TEST_CASE("AccessLog: combined and template formats read request and response headers",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  FakeStream s;
  s.request_headers = {{":method", "GET"},       {":path", "/c"},
                       {":authority", "h.test"}, {"referer", "http://r.test/"},
                       {"user-agent", "curl/8"}, {"x-tenant", "t1"}};
  s.response_headers = {{":status", "200"}, {"x-upstream-name", "up"}};
  s.metadata = {{"ai.agent", "ClaudeBot"}};
  s.bytes_out = 7;

  SECTION("combined") {
    REQUIRE(h.load(fileConfig(dir.file("c.log"), R"("format": "combined")")));
    h.addWorker();
    h.complete(s);
    h.destroyConfig();
    CHECK(readLines(dir.file("c.log")) ==
          std::vector<std::string>{"127.0.0.1 - - [24/Nov/2025:16:00:00 +0000] \"GET /c "
                                   "HTTP/1.1\" 200 7 \"http://r.test/\" \"curl/8\""});
  }
  SECTION("template") {
    REQUIRE(h.load(fileConfig(
        dir.file("t.log"),
        R"("format": {"template": "%REQ(:method)% %PATH% %STATUS% %RESP(X-Upstream-Name)% )"
        R"(%RESP(:status)% %REQ(x-tenant)% %REQ(x-none)% %METADATA(ai.agent)% %FLAGS%"})")));
    h.addWorker();
    h.complete(s);
    h.destroyConfig();
    CHECK(readLines(dir.file("t.log")) ==
          std::vector<std::string>{"GET /c 200 up 200 t1 - ClaudeBot -"});
  }
}

TEST_CASE("AccessLog: every stream shares the worker's object", "[access_log]") {
  AccessLogHarness h;
  REQUIRE(h.load(R"({"path": "stderr"})"));
  h.addWorker();
  FakeStream a;
  FakeStream b;
  void* fa = h.desc->sluice_on_stream_new(h.config, h.workerState(0), a.handle());
  void* fb = h.desc->sluice_on_stream_new(h.config, h.workerState(0), b.handle());
  CHECK(fa != nullptr);
  CHECK(fa == fb);
  h.desc->sluice_on_stream_destroy(fa);
  h.desc->sluice_on_stream_destroy(fb);
}

TEST_CASE("AccessLog: when conditions must all hold", "[access_log]") {
  const auto [when, status, duration_us, logged] =
      GENERATE(table<std::string, uint32_t, uint64_t, bool>({
          {R"({})", 200, 0, true},
          {R"({"status_min": 400})", 200, 10000000, false},
          {R"({"status_min": 400})", 399, 0, false},
          {R"({"status_min": 400})", 400, 0, true},
          {R"({"status_min": 400})", 503, 0, true},
          {R"({"status_min": 400})", 0, 0, true}, // no response at all: a failure, logged
          {R"({"min_duration_ms": 500})", 500, 499999, false},
          {R"({"min_duration_ms": 500})", 500, 500000, true},
          {R"({"status_min": 500, "min_duration_ms": 100})", 502, 99999, false},
          {R"({"status_min": 500, "min_duration_ms": 100})", 404, 200000, false},
          {R"({"status_min": 500, "min_duration_ms": 100})", 502, 200000, true},
          {R"({"sample": 0})", 500, 1000000, false},
          {R"({"sample": 1, "status_min": 500})", 500, 0, true},
          {R"({"sample": 0.0, "status_min": 100})", 500, 0, false},
      }));
  AccessLogHarness h;
  TempDir dir;
  REQUIRE(h.load(fileConfig(dir.file("a.log"), "\"when\": " + when)));
  h.addWorker();
  FakeStream s;
  s.response_status = status;
  s.duration_us = duration_us;
  h.complete(s);
  h.destroyConfig();
  INFO(when << " status " << status << " duration_us " << duration_us);
  CHECK(readLines(dir.file("a.log")).size() == (logged ? 1u : 0u));
}

TEST_CASE("AccessLog: sample keeps that fraction of what passes the other conditions",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  REQUIRE(h.load(fileConfig(
      dir.file("a.log"), R"("when": {"sample": 0.25, "status_min": 500}, "buffer_bytes": 4096)")));
  h.addWorker();
  constexpr int kStreams = 20000;
  for (int i = 0; i < kStreams; i++) {
    FakeStream s = requestStream(std::to_string(i));
    s.response_status = i % 2 == 0 ? 200 : 500; // half pass status_min
    h.complete(s);
  }
  h.destroyConfig();
  const auto lines = readLines(dir.file("a.log"));
  // Expected 2500 of the 10000 that pass; 6 sigma is about +-260.
  CHECK(lines.size() > 2240);
  CHECK(lines.size() < 2760);
  for (const auto& l : lines) {
    CHECK(Json::parse(l)["status"] == 500);
  }
}

TEST_CASE("AccessLog: the flush timer hands the buffer over and re-arms", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("a.log");
  REQUIRE(h.load(fileConfig(path, R"("flush_ms": 250)")));
  FakeWorker& w = h.addWorker();
  FakeWorker& other = h.addWorker();
  REQUIRE(w.timers.size() == 1);
  CHECK(w.timers.begin()->second.timeout_ms == 250);

  for (int i = 0; i < 3; i++) {
    FakeStream s = requestStream("r" + std::to_string(i));
    h.complete(s);
  }
  // Below buffer_bytes and before the timer: still in the worker's buffer. A marker line flushed
  // by a second worker proves it without a sleep: the writer thread writes hand-overs in order,
  // so had the first worker handed its three lines over, they would be in the file with it.
  FakeStream marker = requestStream("marker");
  h.complete(marker, 1);
  CHECK(other.fireTimers() == 1);
  REQUIRE(waitUntil([&] { return !readLines(path).empty(); }));
  auto lines = readLines(path);
  REQUIRE(lines.size() == 1);
  CHECK(Json::parse(lines[0])["request_id"] == "marker");

  CHECK(w.fireTimers() == 1);
  CHECK(waitUntil([&] { return readLines(path).size() == 4; }));
  REQUIRE(w.timers.size() == 1); // re-armed from its callback
  CHECK(w.timers.begin()->second.timeout_ms == 250);

  CHECK(w.fireTimers() == 1); // an empty buffer: nothing to write, still re-armed
  CHECK(w.timers.size() == 1);

  h.destroyWorker(0);
  CHECK(w.timers.empty()); // cancelled in sluice_on_worker_destroy
  h.destroyConfig();
  CHECK(readLines(path).size() == 4);
}

TEST_CASE("AccessLog: a buffer past buffer_bytes is handed over without the timer",
          "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("a.log");
  REQUIRE(h.load(fileConfig(path, R"("buffer_bytes": 1000, "flush_ms": 3600000)")));
  h.addWorker();
  for (int i = 0; i < 4; i++) { // ~330 bytes each: the fourth crosses 1000
    FakeStream s = requestStream("r" + std::to_string(i));
    h.complete(s);
  }
  CHECK(waitUntil([&] { return readLines(path).size() == 4; }));

  SECTION("buffer_bytes 0 writes every line at once") {
    REQUIRE(h.load(fileConfig(dir.file("b.log"), R"("buffer_bytes": 0)")));
    h.addWorker();
    FakeStream s;
    h.complete(s);
    CHECK(waitUntil([&] { return readLines(dir.file("b.log")).size() == 1; }));
  }
}

TEST_CASE("AccessLog: worker shutdown and config destroy lose no line", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("a.log");
  REQUIRE(h.load(fileConfig(path, R"("flush_ms": 3600000)")));
  h.addWorker();
  h.addWorker();
  for (int i = 0; i < 10; i++) {
    FakeStream s = requestStream("r" + std::to_string(i));
    h.complete(s, static_cast<size_t>(i % 2));
  }
  h.destroyWorker(0);
  CHECK(waitUntil([&] { return readLines(path).size() == 5; }));
  h.destroyConfig(); // worker 1 is destroyed first, then the writer drains
  CHECK(readLines(path).size() == 10);
  CHECK(h.host.metric("sluice_access_log_lines_total") == 10);
  CHECK(h.host.metric("sluice_access_log_dropped_lines_total") == 0);
}

TEST_CASE("AccessLog: N lines from two worker threads reach the file whole", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("a.log");
  REQUIRE(h.load(fileConfig(path, R"("buffer_bytes": 2048, "flush_ms": 10)")));
  h.addWorker();
  h.addWorker();
  constexpr int kPerWorker = 20000;
  auto run = [&](size_t w) {
    FakeStream s;
    s.metadata = {{"worker", std::to_string(w)}};
    for (int i = 0; i < kPerWorker; i++) {
      s.request_id = std::to_string(w) + "-" + std::to_string(i);
      s.request_headers[1].second = "/path/" + std::string(static_cast<size_t>(i % 300), 'x');
      h.complete(s, w);
      if (i % 997 == 0) {
        h.worker(w).fireTimers();
      }
    }
    h.destroyWorker(w); // on the worker's own thread, as the host does
  };
  std::thread t0(run, 0);
  std::thread t1(run, 1);
  t0.join();
  t1.join();
  h.destroyConfig();

  // A writer that falls more than max_pending_bytes behind (a loaded machine) drops whole
  // buffers and counts their lines: every line is either in the file, whole, or counted.
  const auto lines = readLines(path);
  const auto dropped = static_cast<size_t>(h.host.metric("sluice_access_log_dropped_lines_total"));
  REQUIRE(lines.size() + dropped == 2 * kPerWorker);
  CHECK(lines.size() >= kPerWorker / 10);
  std::set<std::string> ids;
  int last[2] = {-1, -1};
  bool in_order = true;
  for (const auto& l : lines) {
    Json j;
    REQUIRE_NOTHROW(j = Json::parse(l));
    const std::string id = j["request_id"];
    ids.insert(id);
    const size_t w = j["worker"] == "0" ? 0 : 1;
    const std::string prefix = std::to_string(w) + "-";
    REQUIRE(id.rfind(prefix, 0) == 0);
    const int n = std::stoi(id.substr(prefix.size()));
    in_order = in_order && n > last[w];
    last[w] = n;
  }
  CHECK(ids.size() == lines.size());
  CHECK(in_order); // each worker's lines keep their order
  CHECK(h.host.metric("sluice_access_log_lines_total") == static_cast<double>(lines.size()));
}

TEST_CASE("AccessLog: log reopen moves new lines to a fresh file", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("access.log");
  REQUIRE(h.load(fileConfig(path)));
  FakeWorker& w = h.addWorker();
  for (int i = 0; i < 10; i++) {
    FakeStream s = requestStream("before-" + std::to_string(i));
    h.complete(s);
  }
  w.fireTimers();
  REQUIRE(waitUntil([&] { return readLines(path).size() == 10; }));

  std::filesystem::rename(path, path + ".1");
  h.reopen(); // what SIGUSR1 does, on the main thread
  for (int i = 0; i < 5; i++) {
    FakeStream s = requestStream("after-" + std::to_string(i));
    h.complete(s);
  }
  h.destroyConfig();

  const auto old_lines = readLines(path + ".1");
  const auto new_lines = readLines(path);
  REQUIRE(old_lines.size() == 10);
  REQUIRE(new_lines.size() == 5);
  for (const auto& l : old_lines) {
    CHECK_THAT(Json::parse(l)["request_id"].get<std::string>(), Catch::StartsWith("before-"));
  }
  for (const auto& l : new_lines) {
    CHECK_THAT(Json::parse(l)["request_id"].get<std::string>(), Catch::StartsWith("after-"));
  }
}

TEST_CASE("AccessLog: reopen creates the file again even before the next line", "[access_log]") {
  AccessLogHarness h;
  TempDir dir;
  const std::string path = dir.file("access.log");
  REQUIRE(h.load(fileConfig(path)));
  std::filesystem::remove(path);
  h.reopen();
  CHECK(waitUntil([&] { return std::filesystem::exists(path); }));
}

TEST_CASE("AccessLog: two configs on one file never split lines", "[access_log]") {
  AccessLogHarness a;
  AccessLogHarness b;
  TempDir dir;
  const std::string path = dir.file("shared.log");
  // Each harness owns a FakeHost; the last one constructed serves metrics, so drive them in turn.
  REQUIRE(a.load(fileConfig(path, R"("buffer_bytes": 512)")));
  REQUIRE(b.load(fileConfig(path, R"("buffer_bytes": 700, "format": "combined")")));
  a.addWorker();
  b.addWorker();
  for (int i = 0; i < 2000; i++) {
    FakeStream s = requestStream("id" + std::to_string(i));
    a.complete(s);
    b.complete(s);
  }
  a.destroyConfig();
  b.destroyConfig();
  const auto lines = readLines(path);
  REQUIRE(lines.size() == 4000);
  size_t json = 0;
  for (const auto& l : lines) {
    if (l.front() == '{') {
      CHECK_NOTHROW(Json::parse(l));
      json++;
    } else {
      CHECK_THAT(l, Catch::StartsWith("127.0.0.1 - - [") && Catch::EndsWith("\"-\" \"-\""));
    }
  }
  CHECK(json == 2000);
}

} // namespace
} // namespace sluice::testing
