#include "core/common/alloc_count.h"

#include <atomic>

namespace sluice {

namespace {
AllocCountFn g_count = nullptr;
AllocEnableFn g_enable = nullptr;
AllocMarkFn g_mark_worker = nullptr;
AllocCountFn g_worker_count = nullptr;
std::atomic<bool> g_enabled{false};
} // namespace

void setAllocCounter(AllocCountFn count, AllocEnableFn enable, AllocMarkFn mark_worker,
                     AllocCountFn worker_count) {
  g_count = count;
  g_enable = enable;
  g_mark_worker = mark_worker;
  g_worker_count = worker_count;
}

bool allocCountAvailable() {
  return g_count != nullptr;
}

void enableAllocCount(bool on) {
  if (g_enable != nullptr) {
    g_enable(on);
    g_enabled.store(on, std::memory_order_relaxed);
  }
}

bool allocCountEnabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

uint64_t allocCount() {
  return g_count != nullptr ? g_count() : 0;
}

void markWorkerThreadForAllocCount() {
  if (g_mark_worker != nullptr) {
    g_mark_worker();
  }
}

uint64_t workerAllocCount() {
  return g_worker_count != nullptr ? g_worker_count() : 0;
}

} // namespace sluice
