#pragma once

// Names the calling thread as `top -H`, `ps -L`, `perf` and /proc/PID/task/TID/comm show it.
// Linux keeps 15 bytes; a longer name is cut, never refused.

#include <pthread.h>

#include <cstring>

namespace sluice {

inline void setThreadName(const char* name) {
  char cut[16];
  std::strncpy(cut, name, sizeof(cut) - 1);
  cut[sizeof(cut) - 1] = '\0';
  pthread_setname_np(pthread_self(), cut);
}

} // namespace sluice
