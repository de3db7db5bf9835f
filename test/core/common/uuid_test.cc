// core/common/uuid.h: request-id UUIDs, a word of hex digits at a time, against the per-digit rule.

#include "core/common/uuid.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

namespace {

// The per-digit rule the word-at-a-time formatter must match.
std::string reference(uint64_t a, uint64_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  a = (a & ~0xf000ull) | 0x4000ull;
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  std::string out;
  for (int i = 0; i < 16; i++) {
    if (i == 8 || i == 12) {
      out += '-';
    }
    out += kHex[(a >> (60 - 4 * i)) & 0xf];
  }
  for (int i = 0; i < 16; i++) {
    if (i == 0 || i == 4) {
      out += '-';
    }
    out += kHex[(b >> (60 - 4 * i)) & 0xf];
  }
  return out;
}

std::string format(uint64_t a, uint64_t b) {
  char buf[36];
  sluice::formatUuidV4(a, b, buf);
  return std::string(buf, sizeof(buf));
}

} // namespace

TEST_CASE("formatUuidV4: every nibble value at every position, as the per-digit rule", "[common]") {
  for (int pos = 0; pos < 16; pos++) {
    for (uint64_t nibble = 0; nibble < 16; nibble++) {
      const uint64_t v = nibble << (4 * pos);
      INFO("nibble " << nibble << " at " << pos);
      CHECK(format(v, 0) == reference(v, 0));
      CHECK(format(0, v) == reference(0, v));
      CHECK(format(~v, ~v) == reference(~v, ~v));
    }
  }
  CHECK(format(0, 0) == "00000000-0000-4000-8000-000000000000");
  CHECK(format(~0ull, ~0ull) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
  CHECK(format(0x0123456789abcdefull, 0xfedcba9876543210ull) ==
        "01234567-89ab-4def-bedc-ba9876543210");
}

TEST_CASE("formatUuidV4: random words, as the per-digit rule", "[common]") {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 10000; i++) {
    const uint64_t a = rng();
    const uint64_t b = rng();
    INFO(a << " " << b);
    REQUIRE(format(a, b) == reference(a, b));
  }
}
