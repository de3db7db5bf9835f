#pragma once

// One writer thread per access_log config: workers hand over whole buffers of complete lines
// (a swap under a mutex held only for the hand-over, never across I/O) and the thread does the
// write(2) calls. Buffers are recycled, so steady state does not allocate.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::filters::access_log {

class Writer {
public:
  // path: "stdout", "stderr" or a file (opened O_APPEND|O_CREAT). Null and `error` on failure.
  static std::unique_ptr<Writer> open(const std::string& path, std::string& error);
  ~Writer(); // writes everything queued, then stops

  // Queues `buf` (complete lines) and gives back an empty buffer in its place.
  void submit(std::string& buf);
  // Reopen the file before the next write (log rotation). Any thread.
  void reopen();
  uint64_t writeErrors() const;

private:
  Writer() = default;
  void run();
  void writeAll(const std::string& data);

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> queue_;
  std::vector<std::string> free_;
  bool stop_ = false;
  bool reopen_ = false;
  uint64_t write_errors_ = 0;
  std::thread thread_;
};

} // namespace sluice::filters::access_log
