#pragma once

#include "core/common/logger.h"

#include <cstdio>
#include <cstdlib>

// SLUICE_ASSERT: debug-only invariant. SLUICE_RELEASE_ASSERT: unrecoverable, always checked.
// SLUICE_BUG: a should-not-happen that release builds survive (logged), debug builds abort.
#define SLUICE_RELEASE_ASSERT(cond, msg)                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "sluice: assertion failed at %s:%d: %s (%s)\n", __FILE__, __LINE__,     \
                   #cond, msg);                                                                    \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

#ifdef NDEBUG
#define SLUICE_ASSERT(cond, msg) ((void)0)
#define SLUICE_BUG(msg) SLUICE_LOG(Error, "bug", "{} at {}:{}", msg, __FILE__, __LINE__)
#else
#define SLUICE_ASSERT(cond, msg) SLUICE_RELEASE_ASSERT(cond, msg)
#define SLUICE_BUG(msg) SLUICE_RELEASE_ASSERT(false, msg)
#endif
