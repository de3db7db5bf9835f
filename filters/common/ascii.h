#pragma once

// ASCII helpers for header names and tokens (HTTP names compare without case, ASCII only).

#include <string_view>

namespace sluice::filters::common {

inline char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Equal without ASCII case (header names, tokens).
inline bool asciiIequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); i++) {
    if (asciiLower(a[i]) != asciiLower(b[i])) {
      return false;
    }
  }
  return true;
}

} // namespace sluice::filters::common
