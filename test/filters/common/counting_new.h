#pragma once

// Counting global operator new for the filters' zero-allocation tests. Include this header in
// exactly ONE translation unit of a test binary (it defines the replaceable allocation
// functions); other files of the binary use alloc_probe.h. Every allocation is counted, per
// thread.

#include "test/filters/common/alloc_probe.h"

#include <cstdlib>
#include <new>

namespace sluice::testing {
thread_local uint64_t t_allocations = 0;
uint64_t allocationCount() {
  return t_allocations;
}
} // namespace sluice::testing

namespace {

using sluice::testing::t_allocations;

void* countedAlloc(std::size_t n) {
  t_allocations++;
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}

void* countedAlignedAlloc(std::size_t n, std::align_val_t align) {
  t_allocations++;
  const auto a = static_cast<std::size_t>(align);
  const std::size_t size = (n + a - 1) / a * a; // aligned_alloc wants a multiple of the alignment
  if (void* p = std::aligned_alloc(a, size == 0 ? a : size)) {
    return p;
  }
  throw std::bad_alloc();
}

} // namespace

#if defined(__GNUC__) && !defined(__clang__)
// GCC sees free() on memory from operator new once these are inlined into each other: that is the
// point of a malloc-backed replacement.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every replaceable form, so nothing mixes this malloc/free pair with another allocator's (ASan
// reports alloc-dealloc mismatches otherwise).
void* operator new(std::size_t n) {
  return countedAlloc(n);
}
void* operator new[](std::size_t n) {
  return countedAlloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) {
  return countedAlignedAlloc(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return countedAlignedAlloc(n, a);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return countedAlignedAlloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return countedAlignedAlloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
