#pragma once

// Captures what the code under test writes to a file descriptor (stdout, stderr) while the
// object lives: the descriptor is pointed at a temporary file and restored by text().

#include <cstdio>
#include <string>

#include <unistd.h>

namespace sluice::testing {

class CaptureFd {
public:
  explicit CaptureFd(int fd) : fd_(fd), file_(std::tmpfile()) {
    std::fflush(nullptr);
    saved_ = ::dup(fd_);
    ::dup2(::fileno(file_), fd_);
  }
  ~CaptureFd() {
    restore();
    std::fclose(file_);
  }
  CaptureFd(const CaptureFd&) = delete;
  CaptureFd& operator=(const CaptureFd&) = delete;

  // Restores the descriptor and returns everything written to it.
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) {
      out.append(buf, n);
    }
    return out;
  }

private:
  void restore() {
    if (saved_ >= 0) {
      std::fflush(nullptr);
      ::dup2(saved_, fd_);
      ::close(saved_);
      saved_ = -1;
    }
  }

  int fd_;
  std::FILE* file_;
  int saved_ = -1;
};

} // namespace sluice::testing
