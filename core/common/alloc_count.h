#pragma once

// Counting heap allocations for `sluice bench-filter` and for the debug admin counter
// (GET /debug/allocations). The sluice executable installs a counter (it interposes malloc,
// calloc and realloc); library code and tests see "not available".

#include <cstdint>

namespace sluice {

using AllocCountFn = uint64_t (*)();
using AllocEnableFn = void (*)(bool);
using AllocMarkFn = void (*)();

void setAllocCounter(AllocCountFn count, AllocEnableFn enable, AllocMarkFn mark_worker = nullptr,
                     AllocCountFn worker_count = nullptr);
// False when no counter is installed (tests, sanitizer builds).
bool allocCountAvailable();
// Turns counting on or off (off by default: the server never pays for it, unless it was started
// with SLUICE_COUNT_ALLOCATIONS=1).
void enableAllocCount(bool on);
// True while counting is on.
bool allocCountEnabled();
// Allocations counted so far, over every thread.
uint64_t allocCount();
// Marks the calling thread as a worker (a server worker calls it once when it starts): its
// allocations are also counted in workerAllocCount().
void markWorkerThreadForAllocCount();
// Allocations counted so far on worker threads only: the per-request data path, without the
// admin API or the main thread.
uint64_t workerAllocCount();

} // namespace sluice
