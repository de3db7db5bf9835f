#include "core/common/readiness.h"

namespace sluice {

Readiness& Readiness::global() {
  static Readiness r;
  return r;
}

uint64_t Readiness::hold(std::string what) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t id = next_id_++;
  holds_.emplace(id, std::move(what));
  return id;
}

void Readiness::release(uint64_t id) {
  std::function<void()> cb;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (holds_.erase(id) == 0) {
      return;
    }
    cb = on_change_;
  }
  if (cb) {
    cb();
  }
}

size_t Readiness::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return holds_.size();
}

std::vector<std::string> Readiness::pendingWhat() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.reserve(holds_.size());
  for (const auto& [id, what] : holds_) {
    out.push_back(what);
  }
  return out;
}

void Readiness::setOnChange(std::function<void()> cb) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_change_ = std::move(cb);
}

} // namespace sluice
