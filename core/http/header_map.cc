#include "core/http/header_map.h"

#include "core/network/block_pool.h"

#include <cstdint>
#include <cstring>

namespace sluice::http {

namespace {
inline char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHigh = kOnes * 0x80;
constexpr uint64_t kCase = kOnes * 0x20;

// lower(a[i]) == lower(b[i]) for the 8 bytes of a word at once: each byte equal, or the same ASCII
// letter in either case ('@' and '`', '[' and '{', 0xc1 and 0xe1 also differ in 0x20 alone, and
// are different).
inline bool iequalsWord(uint64_t a, uint64_t b) {
  const uint64_t diff = a ^ b;
  if (diff == 0) {
    return true;
  }
  if ((diff & ~kCase) != 0) {
    return false;
  }
  // Every differing byte differs in 0x20 alone: each must be a letter. Per byte of `a` folded to
  // lower case, high bit set if it is in 'a'..'z'; the sums stay below 0x100, no carry.
  const uint64_t low7 = (a | kCase) & ~kHigh;
  const uint64_t letter =
      (low7 + kOnes * (0x80 - 'a')) & ~(low7 + kOnes * (0x80 - 'z' - 1)) & ~a & kHigh;
  return ((diff << 2) & ~letter) == 0; // 0x20 << 2 is 0x80, in the same byte
}

template <typename T> inline T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Bytes p[0..n), 0 < n < 8, as one word: two overlapping loads (a byte may appear twice, the same
// byte in both operands of a comparison).
inline uint64_t loadShort(const char* p, size_t n) {
  if (n >= 4) {
    return load<uint32_t>(p) | (static_cast<uint64_t>(load<uint32_t>(p + n - 4)) << 32);
  }
  if (n >= 2) {
    return load<uint16_t>(p) | (static_cast<uint64_t>(load<uint16_t>(p + n - 2)) << 16);
  }
  return static_cast<unsigned char>(p[0]);
}

} // namespace

bool iequalsBytes(const char* a, const char* b, size_t n) {
  if (n < 8) {
    return n == 0 || iequalsWord(loadShort(a, n), loadShort(b, n));
  }
  // A word at a time; the last word overlaps the one before it rather than reading past the end.
  // Names up to 16 bytes (most) take no loop: the loop's hoisted constants would cost their
  // registers' saves on every call.
  if (n > 16) {
    return iequalsWord(load<uint64_t>(a), load<uint64_t>(b)) && iequalsBytes(a + 8, b + 8, n - 8);
  }
  return iequalsWord(load<uint64_t>(a), load<uint64_t>(b)) &&
         iequalsWord(load<uint64_t>(a + n - 8), load<uint64_t>(b + n - 8));
}

void toLower(std::string& s) {
  for (char& c : s) {
    c = lower(c);
  }
}

char* Arena::alloc(size_t n) {
  while (active_ < blocks_.size()) {
    Block& b = blocks_[active_];
    if (b.cap - used_ >= n) {
      char* p = b.data + used_;
      used_ += n;
      return p;
    }
    active_++;
    used_ = 0;
  }
  size_t cap = n > kBlock ? n : kBlock;
  blocks_.push_back(Block{network::BlockPool::take(cap), cap});
  active_ = blocks_.size() - 1;
  used_ = n;
  return blocks_.back().data;
}

std::string_view Arena::copy(std::string_view s) {
  if (s.empty()) {
    return {};
  }
  char* p = alloc(s.size());
  std::memcpy(p, s.data(), s.size());
  return {p, s.size()};
}

std::string_view Arena::concat(std::string_view a, std::string_view sep, std::string_view b) {
  size_t n = a.size() + sep.size() + b.size();
  if (n == 0) {
    return {};
  }
  char* p = alloc(n);
  if (!a.empty()) {
    std::memcpy(p, a.data(), a.size());
  }
  if (!sep.empty()) {
    std::memcpy(p + a.size(), sep.data(), sep.size());
  }
  if (!b.empty()) {
    std::memcpy(p + a.size() + sep.size(), b.data(), b.size());
  }
  return {p, n};
}

void Arena::reset() {
  if (blocks_.size() > 1) {
    // Keep one block sized for the largest need seen.
    size_t best = 0;
    for (size_t i = 1; i < blocks_.size(); i++) {
      if (blocks_[i].cap > blocks_[best].cap) {
        best = i;
      }
    }
    if (best != 0) {
      std::swap(blocks_[0], blocks_[best]);
    }
    for (size_t i = 1; i < blocks_.size(); i++) {
      network::BlockPool::give(blocks_[i].data, blocks_[i].cap);
    }
    blocks_.resize(1);
  }
  active_ = 0;
  used_ = 0;
}

void Arena::release() {
  for (Block& b : blocks_) {
    network::BlockPool::give(b.data, b.cap);
  }
  blocks_.clear(); // keeps the vector's capacity: no allocation when blocks come back
  active_ = 0;
  used_ = 0;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  entries_.push_back({arena_->copy(name), arena_->copy(value)});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  std::string_view v = arena_->copy(value);
  bool done = false;
  size_t j = 0;
  for (size_t i = 0; i < entries_.size(); i++) {
    if (iequals(entries_[i].name, name)) {
      if (done) {
        continue;
      }
      entries_[i].value = v;
      done = true;
    }
    entries_[j++] = entries_[i];
  }
  entries_.resize(j);
  if (!done) {
    entries_.push_back({arena_->copy(name), v});
  }
}

size_t HeaderMap::remove(std::string_view name) {
  size_t before = entries_.size();
  removeIf([&](const HeaderEntry& e) { return iequals(e.name, name); });
  return before - entries_.size();
}

const HeaderEntry* HeaderMap::find(std::string_view name, size_t index) const {
  for (const auto& e : entries_) {
    if (iequals(e.name, name)) {
      if (index == 0) {
        return &e;
      }
      index--;
    }
  }
  return nullptr;
}

size_t HeaderMap::count(std::string_view name) const {
  size_t n = 0;
  for (const auto& e : entries_) {
    if (iequals(e.name, name)) {
      n++;
    }
  }
  return n;
}

bool headerListContains(std::string_view list, std::string_view token) {
  size_t i = 0;
  while (i <= list.size()) {
    size_t comma = list.find(',', i);
    if (comma == std::string_view::npos) {
      comma = list.size();
    }
    std::string_view item = list.substr(i, comma - i);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (iequals(item, token)) {
      return true;
    }
    i = comma + 1;
  }
  return false;
}

} // namespace sluice::http
