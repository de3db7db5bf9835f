#include "core/common/logger.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <string>
#include <thread>
#include <unistd.h>

namespace sluice {

namespace {

// Points fd 2 at a pipe for the test's lifetime; read() collects what reached "stderr".
struct StderrPipe {
  int fds[2] = {-1, -1};
  int saved = -1;
  StderrPipe() {
    REQUIRE(pipe(fds) == 0);
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
  }
  ~StderrPipe() {
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[0]);
    close(fds[1]);
  }
  std::string readAvailable() {
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) {
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
};

} // namespace

TEST_CASE("Logger: with the writer running, lines arrive whole and in order", "[logger]") {
  StderrPipe err;
  Logger::startWriter();
  for (int i = 0; i < 100; i++) {
    SLUICE_LOG(Warn, "test", "line {}", i);
  }
  Logger::write(LogLevel::Error, "filter", "authz", "req-1", "denied");
  Logger::stopWriter(); // drains the queue
  std::string out = err.readAvailable();
  size_t at = 0;
  for (int i = 0; i < 100; i++) {
    std::string want = "warn [test] line " + std::to_string(i) + "\n";
    size_t p = out.find(want, at);
    REQUIRE(p != std::string::npos);
    at = p + want.size();
  }
  CHECK(out.find("error [filter authz] [req-1] denied\n", at) != std::string::npos);
}

TEST_CASE("Logger: a stderr nobody reads never blocks a logging thread", "[logger]") {
  StderrPipe err;
  Logger::startWriter();
  uint64_t dropped_before = Logger::dropped();
  // The pipe holds 64 KiB; the queue 1 MiB. 4 MiB of lines: the writer blocks on the full pipe,
  // the queue fills, and the rest is dropped instead of blocking this thread (if it blocked,
  // this loop would never finish).
  std::string payload(1000, 'x');
  for (int i = 0; i < 4096; i++) {
    Logger::write(LogLevel::Warn, "test", payload);
  }
  CHECK(Logger::dropped() > dropped_before);
  // Drain the pipe so the writer can finish; it reports the drop count. A line written once
  // the queue has room again arrives after the flood (earlier tries may be dropped too).
  std::string out;
  std::atomic<bool> seen{false};
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(err.fds[0], buf, sizeof(buf))) > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (out.find("[test] after the flood\n") != std::string::npos) {
        break;
      }
    }
    seen = true;
  });
  while (!seen) {
    Logger::write(LogLevel::Warn, "test", "after the flood");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  reader.join();
  Logger::stopWriter();
  out += err.readAvailable();
  CHECK(out.find("log lines dropped: stderr was not keeping up") != std::string::npos);
  CHECK(out.find("[test] after the flood\n") != std::string::npos);
}

} // namespace sluice
