#include "filters/access_log/writer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace sluice::filters::access_log {

namespace {

// How long the writer keeps retrying a full pipe once it has been told to stop, before it gives
// up on what is left (a reader that never drains must not hang shutdown forever).
constexpr std::chrono::milliseconds kStopGiveUp{5000};
constexpr int kPollSliceMs = 100;

#ifdef IOV_MAX
constexpr size_t kMaxIov = IOV_MAX;
#else
constexpr size_t kMaxIov = 1024;
#endif

} // namespace

int Writer::openForAppend(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = fmt::format("cannot open \"{}\" for appending: {}", path, std::strerror(errno));
  }
  return fd;
}

bool Writer::checkAppendable(const std::string& path, std::string& error) {
  struct stat st {};
  auto fail = [&](int err) {
    error = fmt::format("cannot open \"{}\" for appending: {}", path, std::strerror(err));
    return false;
  };
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return fail(EISDIR);
    }
    return ::access(path.c_str(), W_OK) == 0 ? true : fail(errno);
  }
  if (errno != ENOENT) {
    return fail(errno);
  }
  // Created at start: its folder must exist and take a new file.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  if (::stat(dir.c_str(), &st) != 0) {
    return fail(errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail(ENOTDIR);
  }
  return ::access(dir.c_str(), W_OK | X_OK) == 0 ? true : fail(errno);
}

Writer::Writer(WriterOptions options, int fd) : options_(std::move(options)), fd_(fd) {
  queue_.reserve(kMaxFreeBuffers);
  free_.reserve(kMaxFreeBuffers);
  // A few spare buffers from the start, so a worker handing a buffer over while the writer is
  // still busy with earlier ones (a loaded machine) does not allocate one mid-traffic. The
  // pages are touched only when lines are written into them.
  for (size_t i = 0; i < kSpareBuffers; i++) {
    free_.emplace_back();
    free_.back().data.reserve(options_.buffer_reserve);
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-alog"); // as top -H and perf show it (<= 15 bytes)
    run();
  });
}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (options_.is_file && fd_ >= 0) {
    ::close(fd_);
  }
}

void Writer::submit(LogBuffer& buffer, bool final) {
  if (buffer.empty()) {
    return;
  }
  LogBuffer fresh;
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!final && pending_bytes_ != 0 &&
        pending_bytes_ + buffer.data.size() > options_.max_pending_bytes) {
      dropped = buffer.lines;
    } else {
      pending_bytes_ += buffer.data.size();
      queue_.push_back(std::move(buffer));
      if (!free_.empty()) {
        fresh = std::move(free_.back());
        free_.pop_back();
      }
    }
  }
  if (dropped != 0) {
    // The writer is behind by more than max_pending_bytes: keep the worker's memory bounded.
    buffer.clear();
    lines_dropped_.fetch_add(dropped, std::memory_order_relaxed);
    if (options_.observer != nullptr) {
      options_.observer->onLinesDropped(dropped);
    }
    return;
  }
  wake_.notify_one();
  if (fresh.data.capacity() < options_.buffer_reserve) {
    fresh.data.reserve(options_.buffer_reserve); // only while the pool warms up
  }
  buffer = std::move(fresh);
}

void Writer::reopen() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reopen_requested_ = true;
  }
  wake_.notify_one();
}

void Writer::reportError(std::string message) {
  write_errors_.fetch_add(1, std::memory_order_relaxed);
  if (failing_) {
    return; // one message per failure episode, not one per batch
  }
  failing_ = true;
  if (options_.observer != nullptr) {
    options_.observer->onWriteError(message);
  }
}

void Writer::reopenFile() {
  if (!options_.is_file) {
    return;
  }
  std::string error;
  const int fd = openForAppend(options_.path, error);
  if (fd < 0) {
    reportError("reopen failed, still writing to the old file: " + error);
    return;
  }
  startWriteback(fd_);
  ::close(fd_);
  fd_ = fd;
}

void Writer::startWriteback(int fd) {
  struct stat st {};
  if (!options_.is_file || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return; // a pipe, a terminal or a device (/dev/null) has no pages to write back
  }
  if (::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0) {
    reportError(
        fmt::format("write-back of \"{}\" failed: {}", options_.path, std::strerror(errno)));
  }
}

uint64_t Writer::writeBatch(std::vector<LogBuffer>& batch, bool stopping) {
  uint64_t written_lines = 0;
  size_t next = 0;   // first buffer not yet completely written
  size_t offset = 0; // bytes of batch[next] already written
  // On the stack (16 KiB at most): the writer thread allocates nothing per batch.
  iovec iov[kMaxIov];
  size_t iov_count = 0;
  auto give_up_at = std::chrono::steady_clock::time_point::max();
  if (stopping) {
    give_up_at = std::chrono::steady_clock::now() + kStopGiveUp;
  }
  while (next < batch.size()) {
    iov_count = 0;
    for (size_t i = next; i < batch.size() && iov_count < kMaxIov; i++) {
      const size_t skip = i == next ? offset : 0;
      iov[iov_count++] = iovec{batch[i].data.data() + skip, batch[i].data.size() - skip};
    }
    const ssize_t n = ::writev(fd_, iov, static_cast<int>(iov_count));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
          std::chrono::steady_clock::now() < give_up_at) {
        // A non-blocking stdout/stderr that is full: wait for the reader.
        pollfd pfd{fd_, POLLOUT, 0};
        ::poll(&pfd, 1, kPollSliceMs);
        continue;
      }
      reportError(fmt::format("write to \"{}\" failed: {}", options_.path, std::strerror(errno)));
      break;
    }
    failing_ = false;
    auto left = static_cast<size_t>(n);
    while (next < batch.size() && left >= batch[next].data.size() - offset) {
      left -= batch[next].data.size() - offset;
      written_lines += batch[next].lines;
      next++;
      offset = 0;
    }
    offset += left;
  }
  uint64_t dropped = 0;
  for (size_t i = next; i < batch.size(); i++) {
    dropped += batch[i].lines;
  }
  if (dropped != 0) {
    lines_dropped_.fetch_add(dropped, std::memory_order_relaxed);
    if (options_.observer != nullptr) {
      options_.observer->onLinesDropped(dropped);
    }
  }
  return written_lines;
}

void Writer::run() {
  std::vector<LogBuffer> batch;
  batch.reserve(kMaxFreeBuffers);
  for (;;) {
    bool reopen = false;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || reopen_requested_ || !queue_.empty(); });
      if (queue_.empty() && !reopen_requested_) {
        break; // stopping, and everything queued has been written
      }
      batch.swap(queue_);
      reopen = reopen_requested_;
      reopen_requested_ = false;
      stopping = stopping_;
    }
    if (reopen) {
      reopenFile();
    }
    size_t bytes = 0;
    for (const LogBuffer& b : batch) {
      bytes += b.data.size();
    }
    const uint64_t lines = batch.empty() ? 0 : writeBatch(batch, stopping);
    if (lines != 0) {
      lines_written_.fetch_add(lines, std::memory_order_relaxed);
      if (options_.observer != nullptr) {
        options_.observer->onLinesWritten(lines);
      }
    }
    // Hand the buffers back for reuse, keeping the pool bounded.
    const size_t keep_capacity = std::max(options_.keep_capacity, options_.buffer_reserve);
    for (LogBuffer& b : batch) {
      b.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_bytes_ -= bytes;
      for (LogBuffer& b : batch) {
        if (free_.size() < kMaxFreeBuffers && b.data.capacity() <= keep_capacity) {
          free_.push_back(std::move(b));
        }
      }
    }
    batch.clear(); // frees what was not kept, outside the lock
  }
  startWriteback(fd_);
}

} // namespace sluice::filters::access_log
