#include "core/common/alloc_count.h"

namespace sluice {

namespace {
AllocCountFn g_count = nullptr;
AllocEnableFn g_enable = nullptr;
} // namespace

void setAllocCounter(AllocCountFn count, AllocEnableFn enable) {
  g_count = count;
  g_enable = enable;
}

bool allocCountAvailable() {
  return g_count != nullptr;
}

void enableAllocCount(bool on) {
  if (g_enable != nullptr) {
    g_enable(on);
  }
}

uint64_t allocCount() {
  return g_count != nullptr ? g_count() : 0;
}

} // namespace sluice
