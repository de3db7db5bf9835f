#pragma once

// A growable byte buffer with a read cursor: bytes in [read_, write_) are readable. Capacity is
// kept across reuse; release() hands the storage back to the thread's BlockPool (an idle
// connection holds none), and the next write takes a pooled block again without malloc.

#include "core/network/block_pool.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace sluice::network {

class Buffer {
public:
  Buffer() = default;
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  char* data() { return data_; }
  const char* readPtr() const { return data_ + read_; }
  size_t readable() const { return write_ - read_; }
  bool empty() const { return write_ == read_; }
  std::string_view view() const { return {data_ + read_, write_ - read_}; }
  size_t readOffset() const { return read_; }
  size_t writeOffset() const { return write_; }
  size_t capacity() const { return cap_; }

  void drain(size_t n) {
    read_ += n;
    if (read_ == write_) {
      read_ = write_ = 0;
    }
  }
  void clear() { read_ = write_ = 0; }
  // Drops the contents and gives the storage back to the pool.
  void release() {
    BlockPool::give(data_, cap_);
    data_ = nullptr;
    cap_ = read_ = write_ = 0;
  }
  // Advance the read cursor without recycling the space (bytes before it stay addressable).
  void skip(size_t n) { read_ += n; }
  void swap(Buffer& o) {
    std::swap(data_, o.data_);
    std::swap(cap_, o.cap_);
    std::swap(read_, o.read_);
    std::swap(write_, o.write_);
  }

  // Space to write at least `min` bytes; returns the pointer and sets avail.
  char* reserve(size_t min, size_t* avail) {
    if (cap_ - write_ < min) {
      grow(min);
    }
    *avail = cap_ - write_;
    return data_ + write_;
  }
  void commit(size_t n) { write_ += n; }
  void append(const void* p, size_t n) {
    if (n == 0) {
      return;
    }
    if (cap_ - write_ < n) {
      grow(n);
    }
    std::memcpy(data_ + write_, p, n);
    write_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void append(char c) { append(&c, 1); }
  // Moves unread bytes to the front (only when nothing points into the buffer).
  void compact() {
    if (read_ > 0) {
      std::memmove(data_, data_ + read_, write_ - read_);
      write_ -= read_;
      read_ = 0;
    }
  }
  // Drops everything from offset `at` on the read side: keeps [0, at) untouched and moves the
  // unread bytes to start at `at` (at <= read_).
  void compactTo(size_t at) {
    if (read_ > at) {
      std::memmove(data_ + at, data_ + read_, write_ - read_);
      write_ = at + (write_ - read_);
      read_ = at;
    }
  }

private:
  void grow(size_t min) {
    size_t used = write_;
    size_t ncap = cap_ ? cap_ : 4096;
    while (ncap - used < min) {
      ncap *= 2;
    }
    if (data_ == nullptr) {
      data_ = BlockPool::take(ncap);
    } else {
      data_ = static_cast<char*>(std::realloc(data_, ncap));
      if (data_ == nullptr) {
        std::abort();
      }
    }
    cap_ = ncap;
  }

  char* data_{nullptr};
  size_t cap_{0};
  size_t read_{0};
  size_t write_{0};
};

} // namespace sluice::network
