#pragma once

// Metrics: families and series are defined on the main thread (config load, start-up) and get a
// stable id; recording from any thread is lock-free and contention-free: each recording thread
// writes to its own shard (single writer, relaxed atomics), and a scrape merges the shards.
// Gauges are process-wide single cells. Series are never removed, so ids stay valid.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice::stats {

constexpr uint32_t kInvalidId = 0xffffffffu;
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { Counter, Gauge, Histogram };

class Registry {
public:
  static constexpr uint32_t kMaxSeries = 1u << 16;
  static constexpr uint32_t kBlockCells = 4096;
  static constexpr uint32_t kMaxBlocks = 1024;

  Registry();
  ~Registry();
  static Registry& global();

  uint32_t defineCounter(const std::string& name, const std::string& help, const Labels& labels,
                         std::string* error = nullptr);
  uint32_t defineGauge(const std::string& name, const std::string& help, const Labels& labels,
                       std::string* error = nullptr);
  // Empty bounds: latency buckets in seconds from 0.5 ms to 10 s.
  uint32_t defineHistogram(const std::string& name, const std::string& help, const Labels& labels,
                           std::vector<double> bounds, std::string* error = nullptr);

  void add(uint32_t id, double delta);     // counter or gauge
  void set(uint32_t id, double value);     // gauge
  void observe(uint32_t id, double value); // histogram
  // Merged value of a counter or gauge (tests, admin).
  double value(uint32_t id) const;
  // Merged histogram count and sum.
  uint64_t histogramCount(uint32_t id) const;

  std::string renderPrometheus() const;
  std::string renderJson() const;

private:
  struct Family;
  struct Series {
    Family* family;
    MetricType type;
    Labels labels;
    uint32_t offset; // first cell
    uint32_t cells;  // counter 1; histogram bounds+1 buckets, sum, count
    std::atomic<double> gauge{0};
  };
  struct Shard;
  uint32_t define(MetricType type, const std::string& name, const std::string& help,
                  const Labels& labels, std::vector<double> bounds, std::string* error);
  Shard& localShard();
  std::atomic<double>* cell(Shard& s, uint32_t index);
  double merged(uint32_t index) const;

  mutable std::mutex mutex_; // definitions, shard list, rendering
  std::vector<std::unique_ptr<Family>> families_;
  std::unique_ptr<std::atomic<Series*>[]> series_;
  std::atomic<uint32_t> series_count_{0};
  uint32_t next_cell_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  uint64_t registry_id_;
};

bool validMetricName(const std::string& name);
bool validLabelName(const std::string& name);

} // namespace sluice::stats
