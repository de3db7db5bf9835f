#pragma once

// Formatting of random (version 4) UUIDs for request ids: two random words in, 36 lowercase
// characters out, a word of hex digits at a time (no loop or branch per digit).

#include <cstdint>
#include <cstring>

namespace sluice {

// The 16 hex digits of v, most significant first, as 16 bytes in memory order.
inline void hex16(uint64_t v, char out[16]) {
  for (int half = 0; half < 2; half++) {
    // One nibble per byte: the upper 32 bits first.
    uint64_t x = half == 0 ? v >> 32 : v & 0xffffffffu;
    x = ((x & 0xffff0000u) << 16) | (x & 0x0000ffffu);
    x = ((x & 0x0000ff000000ff00ull) << 8) | (x & 0x000000ff000000ffull);
    x = ((x & 0x00f000f000f000f0ull) << 4) | (x & 0x000f000f000f000full);
    // Digits 10..15 become 'a'..'f': 1 in each byte whose nibble is >= 10, times 'a' - '0' - 10.
    const uint64_t ten_or_more = ((x + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
    x += 0x3030303030303030ull + ten_or_more * ('a' - '0' - 10);
    // The most significant digit sits in the highest byte; memory order wants it first.
    x = __builtin_bswap64(x);
    std::memcpy(out + 8 * half, &x, 8);
  }
}

// xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx from the bits of a and b (the version and variant bits
// are set here, y is one of 8, 9, a, b).
inline void formatUuidV4(uint64_t a, uint64_t b, char out[36]) {
  a = (a & ~0xf000ull) | 0x4000ull;                        // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull; // RFC 4122 variant
  char ha[16];
  char hb[16];
  hex16(a, ha);
  hex16(b, hb);
  std::memcpy(out, ha, 8);
  out[8] = '-';
  std::memcpy(out + 9, ha + 8, 4);
  out[13] = '-';
  std::memcpy(out + 14, ha + 12, 4);
  out[18] = '-';
  std::memcpy(out + 19, hb, 4);
  out[23] = '-';
  std::memcpy(out + 24, hb + 4, 12);
}

} // namespace sluice
