#include "core/http/header_map.h"
#include "core/network/block_pool.h"
#include "core/network/buffer.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using sluice::network::BlockPool;
using sluice::network::Buffer;

TEST_CASE("BlockPool hands back the block it was given last, per size", "[pool]") {
  char* a = BlockPool::take(BlockPool::kLarge);
  char* b = BlockPool::take(BlockPool::kSmall);
  size_t large = BlockPool::cached(BlockPool::kLarge);
  size_t small = BlockPool::cached(BlockPool::kSmall);
  BlockPool::give(a, BlockPool::kLarge);
  BlockPool::give(b, BlockPool::kSmall);
  CHECK(BlockPool::cached(BlockPool::kLarge) == large + 1);
  CHECK(BlockPool::cached(BlockPool::kSmall) == small + 1);
  CHECK(BlockPool::take(BlockPool::kLarge) == a);
  CHECK(BlockPool::take(BlockPool::kSmall) == b);
  BlockPool::give(a, BlockPool::kLarge);
  BlockPool::give(b, BlockPool::kSmall);
}

TEST_CASE("BlockPool frees other sizes and stops caching at its limit", "[pool]") {
  BlockPool::give(BlockPool::take(1000), 1000); // not pooled: freed (ASan/LSan would see a leak)
  CHECK(BlockPool::cached(1000) == 0);
  const size_t limit = BlockPool::kMaxCachedBytes / BlockPool::kSmall;
  std::vector<char*> blocks;
  for (size_t i = 0; i < limit + 10; i++) {
    blocks.push_back(BlockPool::take(BlockPool::kSmall));
  }
  for (char* p : blocks) {
    BlockPool::give(p, BlockPool::kSmall);
  }
  CHECK(BlockPool::cached(BlockPool::kSmall) == limit);
}

TEST_CASE("Buffer::release gives its block back and the next write reuses it", "[pool]") {
  Buffer buf;
  size_t avail = 0;
  char* p = buf.reserve(BlockPool::kLarge, &avail);
  CHECK(avail == BlockPool::kLarge);
  std::memcpy(p, "GET / HTTP/1.1\r\n", 16);
  buf.commit(16);
  size_t before = BlockPool::cached(BlockPool::kLarge);
  buf.release();
  CHECK(buf.capacity() == 0);
  CHECK(buf.empty());
  CHECK(BlockPool::cached(BlockPool::kLarge) == before + 1);
  CHECK(buf.reserve(BlockPool::kLarge, &avail) == p); // the same block, no malloc
  CHECK(BlockPool::cached(BlockPool::kLarge) == before);
  buf.append(std::string(40000, 'x')); // grows past the pooled sizes by realloc
  CHECK(buf.readable() == 40000);
  buf.release(); // an unpooled capacity is freed
  CHECK(BlockPool::cached(BlockPool::kLarge) == before);
}

TEST_CASE("Arena::release returns its blocks; copies made afterwards are intact", "[pool]") {
  sluice::http::Arena arena;
  std::string_view a = arena.copy("first");
  std::string_view big = arena.copy(std::string(10000, 'y')); // an oversized block
  CHECK(a == "first");
  CHECK(big.size() == 10000);
  size_t before = BlockPool::cached(BlockPool::kSmall);
  arena.release();
  CHECK(BlockPool::cached(BlockPool::kSmall) == before + 1);
  std::string_view b = arena.copy("second");
  CHECK(b == "second");
  CHECK(BlockPool::cached(BlockPool::kSmall) == before);
  arena.reset();
  CHECK(arena.copy("third") == "third");
}
