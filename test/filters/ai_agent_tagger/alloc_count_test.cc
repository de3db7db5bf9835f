// Replaces global operator new in this test binary to count allocations on the current thread
// (see allocationCount() in harness.h). No test cases here.

#include "test/filters/common/counting_new.h"
