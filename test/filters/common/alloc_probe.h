#pragma once

// Allocation counting in tests; the counting operator new is in counting_new.h (included by one
// file of the test binary).

#include <cstdint>

namespace sluice::testing {

extern thread_local uint64_t t_allocations;

// Allocations made by this thread since the program started (counted always).
uint64_t allocationCount();

// This thread's allocations since the probe was made.
class AllocationProbe {
public:
  AllocationProbe() : start_(t_allocations) {}
  uint64_t count() const { return t_allocations - start_; }

private:
  uint64_t start_;
};

} // namespace sluice::testing
