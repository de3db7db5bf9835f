#pragma once

// Readiness holds (ABI 1.2, sluice_host_ready_*): start-up work a filter must finish before the
// process reports ready, e.g. the first fetch of a remote key set. Any thread may take or release
// a hold; the server asks for the count and the descriptions when it answers GET /ready. Never
// on a request path: a hold is taken once per worker state, so a mutex is fine.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

class Readiness {
public:
  static Readiness& global();

  // Returns a nonzero id.
  uint64_t hold(std::string what);
  // Unknown ids and 0 are ignored. Runs the change callback (outside the lock) when a hold went.
  void release(uint64_t id);
  size_t pending() const;
  // What every open hold waits for, oldest first.
  std::vector<std::string> pendingWhat() const;
  // Called on the releasing thread after a hold is released (the server posts to its loop).
  void setOnChange(std::function<void()> cb);

private:
  mutable std::mutex mutex_;
  std::map<uint64_t, std::string> holds_;
  uint64_t next_id_ = 1;
  std::function<void()> on_change_;
};

} // namespace sluice
