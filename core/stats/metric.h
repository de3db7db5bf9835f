#pragma once

// Vocabulary of the stats room, shared by the registry and the exposition helpers.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice::stats {

// The id of no series; equal to SLUICE_METRIC_INVALID of the C ABI so ids pass through as is.
constexpr uint32_t kInvalidId = 0xffffffffu;

// Label name/value pairs of one series. Order does not matter: a family keeps the order of its
// first definition and later definitions are matched by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { Counter, Gauge, Histogram };

// Prometheus `# TYPE` word of a metric type.
const char* typeName(MetricType type);

// Merged state of one histogram series at one moment.
struct HistogramValue {
  std::vector<double> bounds;    // upper bounds, ascending, without +Inf
  std::vector<uint64_t> buckets; // cumulative counts, bounds.size() + 1 entries (last is +Inf)
  double sum = 0;
  uint64_t count = 0; // always equal to buckets.back()
};

} // namespace sluice::stats
