// core/common: the logger's levels and line format, readiness holds, the allocation counter
// hooks.

#include "core/common/alloc_count.h"
#include "core/common/logger.h"
#include "core/common/readiness.h"
#include "test/support/capture_fd.h"

#include <catch2/catch.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace sluice {
namespace {

TEST_CASE("Logger: level names parse, unknown ones are refused", "[common]") {
  LogLevel l = LogLevel::Off;
  CHECK(Logger::parseLevel("debug", l));
  CHECK(l == LogLevel::Debug);
  CHECK(Logger::parseLevel("warning", l));
  CHECK(l == LogLevel::Warn);
  CHECK(Logger::parseLevel("off", l));
  CHECK(l == LogLevel::Off);
  l = LogLevel::Info;
  CHECK_FALSE(Logger::parseLevel("DEBUG", l)); // names are lower-case
  CHECK_FALSE(Logger::parseLevel("verbose", l));
  CHECK_FALSE(Logger::parseLevel("", l));
  CHECK(l == LogLevel::Info); // untouched when refused
}

TEST_CASE("Logger: one line per message, at or above the level only", "[common]") {
  LogLevel before = Logger::level();
  Logger::setLevel(LogLevel::Warn);
  testing::CaptureFd err(STDERR_FILENO);
  SLUICE_LOG(Info, "test", "hidden {}", 1);
  SLUICE_LOG(Warn, "test", "shown {} {}", 2, "x");
  SLUICE_LOG(Error, "cfg", "also shown");
  std::string out = err.text();
  Logger::setLevel(before);
  CHECK(out.find("hidden") == std::string::npos);
  std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn \[test\] shown 2 x\n)"
                  R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z error \[cfg\] also shown\n)");
  CHECK(std::regex_match(out, line));
}

TEST_CASE("Readiness: holds are counted, described oldest first, released once", "[common]") {
  Readiness r;
  int changes = 0;
  r.setOnChange([&] { changes++; });
  uint64_t a = r.hold("jwks idp-a");
  uint64_t b = r.hold("jwks idp-b");
  CHECK(a != 0);
  CHECK(b != 0);
  CHECK(a != b);
  CHECK(r.pending() == 2);
  CHECK(r.pendingWhat() == std::vector<std::string>{"jwks idp-a", "jwks idp-b"});
  r.release(a);
  CHECK(r.pending() == 1);
  CHECK(r.pendingWhat() == std::vector<std::string>{"jwks idp-b"});
  CHECK(changes == 1);
  r.release(a); // twice: ignored
  r.release(0);
  r.release(b + 1000);
  CHECK(r.pending() == 1);
  CHECK(changes == 1);
  std::thread t([&] { r.release(b); }); // any thread may release
  t.join();
  CHECK(r.pending() == 0);
  CHECK(changes == 2);
}

uint64_t g_fake_count = 0;
uint64_t g_fake_worker_count = 0;
bool g_fake_enabled = false;
int g_marks = 0;

TEST_CASE("alloc_count: not available until a counter is installed, then forwarded", "[common]") {
  setAllocCounter(nullptr, nullptr);
  CHECK_FALSE(allocCountAvailable());
  CHECK(allocCount() == 0);
  CHECK(workerAllocCount() == 0);
  enableAllocCount(true); // no counter: stays off
  CHECK_FALSE(allocCountEnabled());
  markWorkerThreadForAllocCount(); // no counter: nothing to call

  setAllocCounter([] { return g_fake_count; }, [](bool on) { g_fake_enabled = on; },
                  [] { g_marks++; }, [] { return g_fake_worker_count; });
  CHECK(allocCountAvailable());
  g_fake_count = 42;
  g_fake_worker_count = 7;
  CHECK(allocCount() == 42);
  CHECK(workerAllocCount() == 7);
  enableAllocCount(true);
  CHECK(g_fake_enabled);
  CHECK(allocCountEnabled());
  markWorkerThreadForAllocCount();
  CHECK(g_marks == 1);
  enableAllocCount(false);
  CHECK_FALSE(g_fake_enabled);
  CHECK_FALSE(allocCountEnabled());
  setAllocCounter(nullptr, nullptr);
}

} // namespace
} // namespace sluice
