#pragma once

// Counting heap allocations for `sluice bench-filter`. The sluice executable installs a counter
// (it interposes malloc, calloc and realloc); library code and tests see "not available".

#include <cstdint>

namespace sluice {

using AllocCountFn = uint64_t (*)();
using AllocEnableFn = void (*)(bool);

void setAllocCounter(AllocCountFn count, AllocEnableFn enable);
// False when no counter is installed (tests, sanitizer builds).
bool allocCountAvailable();
// Turns counting on or off (off by default: the server never pays for it).
void enableAllocCount(bool on);
// Allocations counted so far, over every thread.
uint64_t allocCount();

} // namespace sluice
