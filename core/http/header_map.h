#pragma once

// A header map of string views. Names and values point either into a message's head buffer
// (as parsed, no copy) or into the map's arena (values set by filters). Lookups are
// case-insensitive. The map keeps its capacity across reuse, so steady state does not allocate.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice::http {

// Case-insensitive (ASCII) comparison of bytes of equal length.
bool iequalsBytes(const char* a, const char* b, size_t n);
// Inline so that the usual mismatches (another length, another first byte) cost no call. Bytes
// equal but for case differ in 0x20 at most.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() ||
         (((static_cast<unsigned char>(a[0]) ^ static_cast<unsigned char>(b[0])) & ~0x20) == 0 &&
          iequalsBytes(a.data(), b.data(), a.size()));
}
void toLower(std::string& s);

// Append-only storage for bytes owned by a stream; reset() keeps the first block.
class Arena {
public:
  std::string_view copy(std::string_view s);
  std::string_view concat(std::string_view a, std::string_view sep, std::string_view b);
  Arena() = default;
  ~Arena() { release(); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  // Forget every copy; the blocks stay for reuse.
  void reset();
  // Forget every copy and give the blocks back to the thread's BlockPool (an idle connection).
  void release();

private:
  char* alloc(size_t n);
  static constexpr size_t kBlock = 4096;
  struct Block {
    char* data;
    size_t cap;
  };
  std::vector<Block> blocks_;
  size_t used_ = 0; // in the last block
  size_t active_ = 0;
};

struct HeaderEntry {
  std::string_view name;
  std::string_view value;
};

class HeaderMap {
public:
  explicit HeaderMap(Arena& arena) : arena_(&arena) {}

  void clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }
  const HeaderEntry& at(size_t i) const { return entries_[i]; }
  const std::vector<HeaderEntry>& entries() const { return entries_; }

  // Adds without copying: the caller guarantees the bytes outlive the map's use.
  void addView(std::string_view name, std::string_view value) { entries_.push_back({name, value}); }
  // Copying variants (filters, generated headers).
  void add(std::string_view name, std::string_view value);
  void set(std::string_view name, std::string_view value);
  size_t remove(std::string_view name);
  const HeaderEntry* find(std::string_view name, size_t index = 0) const;
  std::string_view get(std::string_view name) const {
    const HeaderEntry* e = find(name);
    return e ? e->value : std::string_view();
  }
  size_t count(std::string_view name) const;
  template <typename F> void removeIf(F f) {
    size_t j = 0;
    for (size_t i = 0; i < entries_.size(); i++) {
      if (!f(entries_[i])) {
        entries_[j++] = entries_[i];
      }
    }
    entries_.resize(j);
  }
  Arena& arena() { return *arena_; }

private:
  std::vector<HeaderEntry> entries_;
  Arena* arena_;
};

// True if `list` (a comma-separated header value) contains `token` (case-insensitive).
bool headerListContains(std::string_view list, std::string_view token);

} // namespace sluice::http
