#pragma once

// The metrics registry: counters, gauges and histograms in Prometheus families, recorded
// lock-free from any thread, rendered as Prometheus text (0.0.4) and as the /stats JSON.
//
// Model. A family is {name, help, type, label names} (plus bucket bounds for a histogram); a
// series is a family plus label values and has a small integer id. Families and series are
// never removed while the registry lives (a reload may define more), so an id stays valid and
// means the same series for the life of the process.
//
// Threads.
//  - define*(): any thread, takes the registry mutex. Meant for the main thread at config load
//    and start-up; never on a worker's data path.
//  - add() / set() / observe(): any thread, lock-free and contention-free:
//      * counters and histograms are sharded per thread. The first record of a thread attaches
//        a shard to the registry (under the mutex, once per thread and registry); after that a
//        record is a relaxed load and store on a cell only that thread writes. Cells are
//        doubles: counters may be fractional (the C ABI passes doubles); integers stay exact
//        up to 2^53.
//      * gauges are one process-wide atomic per series (set from anywhere, add by atomic add).
//  - value() / histogramValue() / render*(): any thread, take the mutex and merge the shards.
//
// Shard growth. A shard is a fixed table of pointers to blocks of kBlockCells cells; blocks
// never move. Blocks are allocated under the registry mutex only: for every attached shard
// when a definition opens a new block, and for a new shard up to the cells defined so far. A
// record therefore never allocates and never sees a missing block, and a scrape may read any
// block at any time. Since definitions happen at config load, allocation stays off the hot path.
//
// Thread exit. When a thread that recorded exits, its shard is folded into the registry's
// retired totals (under the mutex, so a scrape sees it either in the shard or in the totals,
// never in both or neither) and freed: counts never go backwards. A record made later in that
// thread's exit (from another thread-local destructor) goes straight to the retired totals.
//
// Limits: kMaxSeries series, kMaxBlocks * kBlockCells cells per shard (a counter takes one
// cell, a histogram bounds + 2), kMaxBounds bounds per histogram. Past them define* fails.

#include "core/stats/metric.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::stats {

namespace internal {
struct Shard;
struct ThreadShards;
} // namespace internal

class Registry {
public:
  static constexpr uint32_t kBlockCells = 2048;
  static constexpr uint32_t kMaxBlocks = 2048;
  static constexpr uint32_t kSeriesChunk = 4096;
  static constexpr uint32_t kMaxSeriesChunks = 256;
  static constexpr uint32_t kMaxSeries = kSeriesChunk * kMaxSeriesChunks;
  static constexpr size_t kMaxBounds = 256;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process-wide registry (the C ABI's metric functions and the core's own metrics). It is
  // never destroyed, so threads may record into it until the process ends.
  static Registry& global();

  // Define (or find) a series. Returns its id; the same family and label values (in any order)
  // give the same id. Returns kInvalidId and sets *error (when given) if the name or a label
  // name is not a valid Prometheus name, a label name repeats, the family exists with another
  // type, other label names or other bounds, the family's sample names would collide with
  // another family's (a histogram "x" owns x_bucket, x_sum and x_count), or a limit is reached.
  // Label values and help are made valid UTF-8. The first definition's help text stays.
  uint32_t defineCounter(const std::string& name, const std::string& help, const Labels& labels,
                         std::string* error = nullptr);
  uint32_t defineGauge(const std::string& name, const std::string& help, const Labels& labels,
                       std::string* error = nullptr);
  // `bounds`: bucket upper bounds, finite and strictly ascending; a trailing +Inf is implied and
  // may be given. Empty means the family's bounds if it exists, else defaultLatencyBounds().
  uint32_t defineHistogram(const std::string& name, const std::string& help, const Labels& labels,
                           std::vector<double> bounds, std::string* error = nullptr);

  // Seconds from 0.5 ms to 10 s: the SPEC's request duration buckets.
  static const std::vector<double>& defaultLatencyBounds();

  // Recording. An unknown id, or a call that does not fit the series' type, is ignored (ids
  // come through the C ABI from untrusted modules). Counters ignore negative and non-finite
  // deltas; histograms ignore non-finite observations; a gauge's set() takes any value.
  void add(uint32_t id, double delta);     // counter or gauge
  void set(uint32_t id, double value);     // gauge
  void observe(uint32_t id, double value); // histogram

  // Merged value of a counter or gauge; for a histogram its count. 0 for an unknown id.
  double value(uint32_t id) const;
  // Merged histogram; empty (no bounds, zero counts) when `id` is not a histogram.
  HistogramValue histogramValue(uint32_t id) const;
  // Number of series defined so far; ids are 0 .. seriesCount() - 1.
  uint32_t seriesCount() const { return series_count_.load(std::memory_order_acquire); }

  // Prometheus text exposition 0.0.4: families sorted by name, one # HELP and # TYPE each,
  // series sorted by label values; histograms as cumulative _bucket{le=...} up to le="+Inf",
  // then _sum and _count.
  std::string renderPrometheus() const;
  // {"metrics": [{"name", "type", "labels": {...}, "value"}]} in the same order; a histogram
  // has "buckets": [{"le": bound, "count": cumulative}, ..., {"le": "+Inf", ...}], "sum" and
  // "count" instead of "value".
  std::string renderJson() const;

private:
  friend struct internal::ThreadShards;
  struct Family;
  struct Series;

  uint32_t define(MetricType type, const std::string& name, const std::string& help,
                  const Labels& labels, std::vector<double> bounds, std::string* error);
  const Series* find(uint32_t id) const;
  // This thread's shard, or nullptr while the thread exits (record into retired_ instead).
  internal::Shard* localShard();
  internal::Shard* attachThread();
  void growShards();
  void retireShard(internal::Shard* shard);
  void addRetired(uint32_t cell, double delta);
  // Sum of every shard and the retired totals, one entry per cell. Caller holds mutex_.
  std::vector<double> mergeCells() const;
  double mergeCell(uint32_t cell) const;

  const uint64_t registry_id_; // unique for the process: keys the thread-local shard caches
  mutable std::mutex mutex_;   // definitions, the shard list, the retired totals
  std::map<std::string, std::unique_ptr<Family>> families_; // sorted: stable output
  std::map<std::string, std::string> sample_names_;         // sample name -> owning family
  std::vector<std::unique_ptr<Series>> series_storage_;
  // Chunked id -> series table. Written under mutex_ before series_count_ is released; read
  // without the lock after an acquire load of series_count_.
  std::unique_ptr<const Series*[]> series_chunks_[kMaxSeriesChunks];
  std::atomic<uint32_t> series_count_{0};
  uint32_t cell_count_ = 0; // cells handed out so far
  std::vector<std::unique_ptr<internal::Shard>> shards_;
  std::vector<double> retired_; // totals of exited threads, one per cell
};

} // namespace sluice::stats
