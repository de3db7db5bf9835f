#pragma once

// One writer thread per access_log config. Workers format lines into their own LogBuffer and hand
// whole buffers over with submit(): a swap under a mutex held only for the queue push and the
// pop of a recycled buffer, never across I/O. The thread does every write(2), so a worker never
// blocks on the disk or a pipe, and lines never split: each buffer holds complete lines and is
// written by this one thread in order.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::filters::access_log {

// Complete lines waiting to be written, and how many.
struct LogBuffer {
  std::string data;
  uint64_t lines = 0;

  bool empty() const { return data.empty(); }
  void clear() {
    data.clear();
    lines = 0;
  }
};

// What the writer reports (called on the writer thread, or in submit() on the submitting
// thread for dropped lines). Must be thread-safe.
class WriterObserver {
public:
  virtual ~WriterObserver() = default;
  virtual void onLinesWritten(uint64_t lines) = 0;
  virtual void onLinesDropped(uint64_t lines) = 0;
  virtual void onWriteError(std::string_view message) = 0;
};

struct WriterOptions {
  // "stdout", "stderr" or a file path; only a file is reopened by reopen().
  std::string path;
  bool is_file = false;
  // Capacity reserved in buffers handed back to workers.
  size_t buffer_reserve = 65536;
  // Written buffers up to this capacity are recycled; a bigger one (a huge line blew it up) is
  // freed instead of pinning that memory in the pool.
  size_t keep_capacity = 4u << 20;
  // Bytes queued and not yet written above which a non-final submit() drops its buffer (and
  // counts the lines) instead of growing memory without bound behind a stalled disk or pipe.
  size_t max_pending_bytes = 8u << 20;
  WriterObserver* observer = nullptr; // may be null; must outlive the writer
};

class Writer {
public:
  // Opens `path` for appending (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0644). Returns the fd,
  // or -1 with `error` set.
  static int openForAppend(const std::string& path, std::string& error);
  // The check-phase counterpart, without side effects: false (and `error`, worded like
  // openForAppend's) when opening `path` for appending would fail for a reason known now (a
  // folder, no write permission, a missing parent folder). Creates nothing.
  static bool checkAppendable(const std::string& path, std::string& error);

  // Takes ownership of `fd` when options.is_file (stdout/stderr are borrowed) and starts the
  // writer thread.
  Writer(WriterOptions options, int fd);
  // Writes everything queued, starts the file's write-back (startWriteback), then stops the
  // thread and closes an owned fd.
  ~Writer();

  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues `buffer` (complete lines) and leaves an empty buffer with reserved capacity in its
  // place (recycled, so steady state does not allocate). Never waits for I/O. A final hand-over
  // (a worker going away) is never dropped.
  void submit(LogBuffer& buffer, bool final = false);
  // Reopen the file before the next write (log rotation); the old file's write-back is started
  // before it is closed. Any thread.
  void reopen();

  uint64_t linesWritten() const { return lines_written_.load(std::memory_order_relaxed); }
  uint64_t linesDropped() const { return lines_dropped_.load(std::memory_order_relaxed); }
  uint64_t writeErrors() const { return write_errors_.load(std::memory_order_relaxed); }

private:
  static constexpr size_t kMaxFreeBuffers = 64;
  static constexpr size_t kSpareBuffers = 8; // made at start

  void run();
  void reopenFile();
  // Starts write-back of the dirty pages of `fd` (a regular file) without waiting for the disk:
  // a file the writer stops writing (at shutdown; the old file at a reopen) goes to the disk now
  // instead of at the kernel's periodic write-back up to vm.dirty_expire_centisecs (30 s) later,
  // all at once and into whatever runs on the machine then.
  void startWriteback(int fd);
  // Writes the batch with writev(2), resuming after partial writes. Returns the lines written.
  uint64_t writeBatch(std::vector<LogBuffer>& batch, bool stopping);
  void reportError(std::string message);

  const WriterOptions options_;
  int fd_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<LogBuffer> queue_;  // guarded by mutex_
  std::vector<LogBuffer> free_;   // guarded by mutex_
  size_t pending_bytes_ = 0;      // guarded by mutex_: queued or being written
  bool reopen_requested_ = false; // guarded by mutex_
  bool stopping_ = false;         // guarded by mutex_

  std::atomic<uint64_t> lines_written_{0};
  std::atomic<uint64_t> lines_dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  bool failing_ = false; // writer thread only: an error was reported and nothing succeeded since

  std::thread thread_; // last: started once everything above is initialised
};

} // namespace sluice::filters::access_log
