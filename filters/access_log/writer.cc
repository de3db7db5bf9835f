#include "filters/access_log/writer.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace sluice::filters::access_log {

std::unique_ptr<Writer> Writer::open(const std::string& path, std::string& error) {
  std::unique_ptr<Writer> w(new Writer);
  w->path_ = path;
  if (path == "stdout") {
    w->fd_ = STDOUT_FILENO;
  } else if (path == "stderr") {
    w->fd_ = STDERR_FILENO;
  } else {
    w->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (w->fd_ < 0) {
      error = "cannot open " + path + ": " + std::strerror(errno);
      return nullptr;
    }
    w->owns_fd_ = true;
  }
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (owns_fd_ && fd_ >= 0) {
    ::close(fd_);
  }
}

void Writer::submit(std::string& buf) {
  if (buf.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(buf));
    if (!free_.empty()) {
      buf = std::move(free_.back());
      free_.pop_back();
    } else {
      buf = std::string();
    }
  }
  buf.clear();
  cv_.notify_one();
}

void Writer::reopen() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reopen_ = true;
  }
  cv_.notify_one();
}

uint64_t Writer::writeErrors() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mutex_));
  return write_errors_;
}

void Writer::writeAll(const std::string& data) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      write_errors_++;
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void Writer::run() {
  std::vector<std::string> batch;
  for (;;) {
    bool do_reopen = false;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || reopen_ || !queue_.empty(); });
      batch.swap(queue_);
      do_reopen = reopen_;
      reopen_ = false;
      stopping = stop_;
    }
    if (do_reopen && owns_fd_) {
      int nfd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (nfd >= 0) {
        ::close(fd_);
        fd_ = nfd;
      }
    }
    for (auto& b : batch) {
      writeAll(b);
      b.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& b : batch) {
        if (free_.size() < 64) {
          free_.push_back(std::move(b));
        }
      }
    }
    batch.clear();
    if (stopping) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty()) {
        return;
      }
    }
  }
}

} // namespace sluice::filters::access_log
