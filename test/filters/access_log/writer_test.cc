// The writer thread on its own: hand-over never waits for I/O, back-pressure drops and counts,
// write errors are reported once per episode, destruction drains the queue, and a file the writer
// stops writing has its write-back started at once.

#include "filters/access_log/writer.h"
#include "test/filters/access_log/harness.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sluice::filters::access_log {
namespace {

using testing::readLines;
using testing::TempDir;
using testing::waitUntil;

class CountingObserver : public WriterObserver {
public:
  void onLinesWritten(uint64_t lines) override { written += lines; }
  void onLinesDropped(uint64_t lines) override { dropped += lines; }
  void onWriteError(std::string_view message) override {
    std::lock_guard<std::mutex> lock(mutex);
    errors.emplace_back(message);
  }
  std::vector<std::string> errorMessages() {
    std::lock_guard<std::mutex> lock(mutex);
    return errors;
  }

  std::atomic<uint64_t> written{0};
  std::atomic<uint64_t> dropped{0};
  std::mutex mutex;
  std::vector<std::string> errors;
};

#if !defined(__NR_cachestat) && defined(__linux__)
#define __NR_cachestat 451 // the same on every architecture; Debian 12's headers (6.1) lack it
#endif

// The page cache's dirty pages of `path` (cachestat(2), Linux 6.5+), or -1 when the kernel cannot
// tell.
int64_t dirtyPages(const std::string& path) {
#ifdef __NR_cachestat
  struct {
    uint64_t off, len;
  } range{0, 0};
  struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } stat{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  const long rc = ::syscall(__NR_cachestat, fd, &range, &stat, 0);
  ::close(fd);
  return rc == 0 ? static_cast<int64_t>(stat.nr_dirty) : -1;
#else
  (void)path;
  return -1;
#endif
}

// 4 MiB of lines: far below the kernel's background write-back threshold, so they stay dirty
// until something writes them back.
LogBuffer megabytes(int count) {
  LogBuffer b;
  const std::string line(1023, 'x');
  for (int i = 0; i < count * 1024; i++) {
    b.data += line;
    b.data += '\n';
    b.lines++;
  }
  return b;
}

LogBuffer lines(int first, int count) {
  LogBuffer b;
  for (int i = first; i < first + count; i++) {
    b.data += "line " + std::to_string(i) + "\n";
    b.lines++;
  }
  return b;
}

TEST_CASE("AccessLog: submit hands back an empty buffer with capacity", "[access_log]") {
  TempDir dir;
  std::string error;
  const int fd = Writer::openForAppend(dir.file("w.log"), error);
  REQUIRE(fd >= 0);
  CountingObserver observer;
  Writer writer(WriterOptions{dir.file("w.log"), true, 4096, 1 << 20, 8 << 20, &observer}, fd);
  for (int round = 0; round < 50; round++) {
    LogBuffer b = lines(round * 10, 10);
    writer.submit(b);
    CHECK(b.empty());
    CHECK(b.lines == 0);
    CHECK(b.data.capacity() >= 4096);
  }
  LogBuffer empty;
  writer.submit(empty); // nothing to do
  CHECK(waitUntil([&] { return writer.linesWritten() == 500; }));
  CHECK(observer.written == 500);
  const auto got = readLines(dir.file("w.log"));
  REQUIRE(got.size() == 500);
  for (int i = 0; i < 500; i++) {
    CHECK(got[static_cast<size_t>(i)] == "line " + std::to_string(i));
  }
}

TEST_CASE("AccessLog: a stalled reader never blocks submit; the backlog is bounded",
          "[access_log]") {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  CountingObserver observer;
  // The pipe is not ours to close (is_file false), like stdout.
  auto writer = std::make_unique<Writer>(
      WriterOptions{"stdout", false, 1024, 1 << 20, 256 * 1024, &observer}, pipe_fds[1]);

  // Nobody reads: the writer thread blocks in write(2) once the pipe is full, and submit()
  // keeps returning at once, dropping (and counting) what is over the bound.
  const auto start = std::chrono::steady_clock::now();
  uint64_t submitted = 0;
  for (int i = 0; i < 400; i++) {
    LogBuffer b;
    b.data.assign(4095, 'x');
    b.data += '\n';
    b.lines = 1;
    writer->submit(b);
    submitted++;
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  CHECK(writer->linesDropped() > 0);
  CHECK(observer.dropped == writer->linesDropped());

  // A final hand-over (a worker going away) is queued whatever the backlog.
  LogBuffer last;
  last.data = "final\n";
  last.lines = 1;
  writer->submit(last, true);
  submitted++;

  // Drain the pipe while the writer finishes and stops.
  std::atomic<bool> done{false};
  std::string received;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      received.append(buf, static_cast<size_t>(n));
    }
    done = true;
  });
  writer.reset();
  ::close(pipe_fds[1]);
  reader.join();
  ::close(pipe_fds[0]);
  const auto count = static_cast<uint64_t>(std::count(received.begin(), received.end(), '\n'));
  CHECK(count + observer.dropped == submitted);
  CHECK(observer.written == count);
  CHECK(received.size() >= 6);
  CHECK(received.substr(received.size() - 6) == "final\n");
}

TEST_CASE("AccessLog: write errors are counted and reported once per episode", "[access_log]") {
  TempDir dir;
  const std::string path = dir.file("ro.log");
  { std::ofstream(path) << ""; }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // write(2) fails with EBADF
  REQUIRE(fd >= 0);
  CountingObserver observer;
  {
    Writer writer(WriterOptions{path, true, 1024, 1 << 20, 8 << 20, &observer}, fd);
    for (int i = 0; i < 5; i++) {
      LogBuffer b = lines(i * 3, 3);
      writer.submit(b);
      REQUIRE(waitUntil([&] { return writer.linesDropped() == static_cast<uint64_t>(i + 1) * 3; }));
    }
    CHECK(writer.writeErrors() == 5);
    CHECK(writer.linesWritten() == 0);

    // Rotation fixes it: the reopened file is writable, and a new failure would be reported.
    writer.reopen();
    LogBuffer b = lines(100, 2);
    writer.submit(b);
    CHECK(waitUntil([&] { return writer.linesWritten() == 2; }));
  }
  CHECK(observer.dropped == 15);
  const auto errors = observer.errorMessages();
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Contains("write to \"" + path + "\" failed"));
  CHECK(readLines(path) == std::vector<std::string>{"line 100", "line 101"});
}

TEST_CASE("AccessLog: a failed reopen keeps writing to the old file", "[access_log]") {
  TempDir dir;
  const std::string path = dir.file("sub/a.log");
  std::filesystem::create_directory(dir.file("sub"));
  std::string error;
  const int fd = Writer::openForAppend(path, error);
  REQUIRE(fd >= 0);
  CountingObserver observer;
  {
    Writer writer(WriterOptions{path, true, 1024, 1 << 20, 8 << 20, &observer}, fd);
    std::filesystem::rename(dir.file("sub"), dir.file("moved"));
    writer.reopen(); // the folder is gone: open fails
    LogBuffer b = lines(0, 3);
    writer.submit(b);
  }
  CHECK(readLines(dir.file("moved/a.log")).size() == 3);
  const auto errors = observer.errorMessages();
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Contains("reopen failed"));
}

TEST_CASE("AccessLog: destroying the writer writes everything queued", "[access_log]") {
  TempDir dir;
  std::string error;
  const int fd = Writer::openForAppend(dir.file("w.log"), error);
  REQUIRE(fd >= 0);
  {
    Writer writer(WriterOptions{dir.file("w.log"), true, 64, 1 << 20, 8 << 20, nullptr}, fd);
    for (int i = 0; i < 1000; i++) {
      LogBuffer b = lines(i, 1);
      writer.submit(b, i % 2 == 0);
    }
  }
  CHECK(readLines(dir.file("w.log")).size() == 1000);
}

TEST_CASE("AccessLog: a file the writer stops writing is handed to the disk at once",
          "[access_log]") {
  TempDir dir;
  const std::string path = dir.file("d.log");
  std::string error;
  const int fd = Writer::openForAppend(path, error);
  REQUIRE(fd >= 0);
  CountingObserver observer;
  auto writer = std::make_unique<Writer>(
      WriterOptions{path, true, 1 << 20, 8 << 20, 16 << 20, &observer}, fd);
  LogBuffer b = megabytes(4);
  writer->submit(b);
  REQUIRE(waitUntil([&] { return observer.written.load() == 4096; }));
  const int64_t dirty = dirtyPages(path);
  if (dirty <= 0) {
    // No cachestat(2), or a file system that keeps no dirty pages (tmpfs): nothing to observe.
    WARN("cannot observe dirty pages of " << path << " (cachestat: " << dirty << ")");
    return;
  }
  CHECK(dirty >= 512); // the 4 MiB are still in the page cache, unwritten

  SECTION("at shutdown") {
    writer.reset();
    CHECK(dirtyPages(path) == 0);
    CHECK(readLines(path).size() == 4096);
  }
  SECTION("the old file at a reopen (rotation)") {
    std::filesystem::rename(path, dir.file("d.log.1"));
    writer->reopen();
    LogBuffer next = lines(0, 1);
    writer->submit(next);
    REQUIRE(waitUntil([&] { return observer.written.load() == 4097; }));
    CHECK(dirtyPages(dir.file("d.log.1")) == 0);
    CHECK(readLines(path) == std::vector<std::string>{"line 0"});
    writer.reset();
  }
  CHECK(observer.errorMessages().empty());
}

} // namespace
} // namespace sluice::filters::access_log
