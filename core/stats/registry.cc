#include "core/stats/registry.h"

#include "core/common/assert.h"
#include "core/stats/exposition.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include <fmt/format.h>

namespace sluice::stats {

namespace internal {

// One thread's cells for one registry. Only the owning thread writes a cell (relaxed load and
// store); scrapes read them concurrently. `blocks` and `owned` change under the registry mutex.
struct Shard {
  Shard() {
    for (auto& block : blocks) {
      block.store(nullptr, std::memory_order_relaxed);
    }
  }

  std::atomic<std::atomic<double>*> blocks[Registry::kMaxBlocks];
  std::vector<std::unique_ptr<std::atomic<double>[]>> owned;
};

// The shards a thread attached, one per registry it recorded into. Its destructor runs when
// the thread exits and hands each shard back to its registry if that registry still lives.
struct ThreadShards {
  ~ThreadShards();
  std::vector<std::pair<uint64_t, Shard*>> entries;
};

} // namespace internal

namespace {

using internal::Shard;

// Registries alive right now, by id. A thread that exits looks its registries up here (under
// this mutex, which a registry's destructor also takes) so it never touches a dead one.
// Leaked on purpose: threads may exit after static destructors have run.
struct LiveRegistries {
  std::mutex mutex;
  std::vector<std::pair<uint64_t, Registry*>> list;
};

LiveRegistries& liveRegistries() {
  static LiveRegistries* const live = std::make_unique<LiveRegistries>().release();
  return *live;
}

std::atomic<uint64_t> g_next_registry_id{1};

// The hot-path cache: the shard of the registry this thread recorded into last. Plain
// thread-locals (constant-initialized, no destructor) cost one TLS load, no init guard.
thread_local uint64_t t_cached_registry = 0;
thread_local Shard* t_cached_shard = nullptr;
thread_local bool t_exiting = false;

internal::ThreadShards& threadShards() {
  thread_local internal::ThreadShards shards;
  return shards;
}

void growShard(Shard& shard, uint32_t cells) {
  size_t needed = (static_cast<size_t>(cells) + Registry::kBlockCells - 1) / Registry::kBlockCells;
  while (shard.owned.size() < needed) {
    auto block = std::make_unique<std::atomic<double>[]>(Registry::kBlockCells);
    for (uint32_t i = 0; i < Registry::kBlockCells; i++) {
      block[i].store(0, std::memory_order_relaxed);
    }
    shard.blocks[shard.owned.size()].store(block.get(), std::memory_order_release);
    shard.owned.push_back(std::move(block));
  }
}

// Single writer: a relaxed load and store, no read-modify-write.
void bump(std::atomic<double>& cell, double delta) {
  cell.store(cell.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

std::string labelList(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += out.empty() ? "" : ", ";
    out += n;
  }
  return "{" + out + "}";
}

} // namespace

internal::ThreadShards::~ThreadShards() {
  t_exiting = true;
  t_cached_registry = 0;
  t_cached_shard = nullptr;
  LiveRegistries& live = liveRegistries();
  std::lock_guard<std::mutex> lock(live.mutex);
  for (const auto& [id, shard] : entries) {
    for (const auto& [live_id, registry] : live.list) {
      if (live_id == id) {
        registry->retireShard(shard);
        break;
      }
    }
  }
}

struct Registry::Family {
  std::string name;
  std::string help;
  MetricType type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::map<std::vector<std::string>, uint32_t> series; // label values (label_names order) -> id
};

struct Registry::Series {
  MetricType type;
  uint32_t offset; // first cell: a counter has one, a histogram bounds + 1 buckets and a sum
  const double* bounds;
  uint32_t bound_count;
  const Family* family;
  std::string prom_labels;                          // a="x",b="y" (escaped, no braces)
  std::string json_labels;                          // "a": "x", "b": "y"
  alignas(64) mutable std::atomic<double> gauge{0}; // own cache line: any thread writes it
};

Registry::Registry() : registry_id_(g_next_registry_id.fetch_add(1, std::memory_order_relaxed)) {
  LiveRegistries& live = liveRegistries();
  std::lock_guard<std::mutex> lock(live.mutex);
  live.list.emplace_back(registry_id_, this);
}

Registry::~Registry() {
  LiveRegistries& live = liveRegistries();
  std::lock_guard<std::mutex> lock(live.mutex);
  std::erase_if(live.list, [this](const auto& entry) { return entry.second == this; });
}

Registry& Registry::global() {
  // Never destroyed: workers and detached threads may record while the process exits.
  static Registry* const registry = std::make_unique<Registry>().release();
  return *registry;
}

const std::vector<double>& Registry::defaultLatencyBounds() {
  static const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return bounds;
}

uint32_t Registry::defineCounter(const std::string& name, const std::string& help,
                                 const Labels& labels, std::string* error) {
  return define(MetricType::Counter, name, help, labels, {}, error);
}

uint32_t Registry::defineGauge(const std::string& name, const std::string& help,
                               const Labels& labels, std::string* error) {
  return define(MetricType::Gauge, name, help, labels, {}, error);
}

uint32_t Registry::defineHistogram(const std::string& name, const std::string& help,
                                   const Labels& labels, std::vector<double> bounds,
                                   std::string* error) {
  return define(MetricType::Histogram, name, help, labels, std::move(bounds), error);
}

uint32_t Registry::define(MetricType type, const std::string& name, const std::string& help,
                          const Labels& labels, std::vector<double> bounds, std::string* error) {
  auto fail = [error](std::string message) {
    if (error != nullptr) {
      *error = std::move(message);
    }
    return kInvalidId;
  };
  if (!validMetricName(name)) {
    return fail(fmt::format("invalid metric name \"{}\"", sanitizeUtf8(name)));
  }
  for (size_t i = 0; i < labels.size(); i++) {
    const std::string& label = labels[i].first;
    if (!validLabelName(label)) {
      return fail(fmt::format("invalid label name \"{}\"", sanitizeUtf8(label)));
    }
    if (type == MetricType::Histogram && label == "le") {
      return fail("label name \"le\" is reserved for histogram buckets");
    }
    for (size_t j = 0; j < i; j++) {
      if (labels[j].first == label) {
        return fail(fmt::format("label \"{}\" is given twice", label));
      }
    }
  }
  const bool explicit_bounds = type == MetricType::Histogram && !bounds.empty();
  if (explicit_bounds) {
    if (std::isinf(bounds.back()) && bounds.back() > 0) {
      bounds.pop_back(); // +Inf is always the last bucket
    }
    for (size_t i = 0; i < bounds.size(); i++) {
      if (!std::isfinite(bounds[i])) {
        return fail("histogram bounds must be finite (+Inf is implied)");
      }
      if (i > 0 && !(bounds[i] > bounds[i - 1])) {
        return fail("histogram bounds must be strictly ascending");
      }
    }
    if (bounds.size() > kMaxBounds) {
      return fail(fmt::format("a histogram takes at most {} bounds", kMaxBounds));
    }
  }

  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = nullptr;
  std::vector<std::string> values;
  if (auto it = families_.find(name); it != families_.end()) {
    family = it->second.get();
    if (family->type != type) {
      return fail(
          fmt::format("metric \"{}\" is already defined as a {}", name, typeName(family->type)));
    }
    if (labels.size() != family->label_names.size()) {
      return fail(fmt::format("metric \"{}\" is already defined with labels {}", name,
                              labelList(family->label_names)));
    }
    for (const auto& label_name : family->label_names) {
      auto match = std::find_if(labels.begin(), labels.end(),
                                [&](const auto& l) { return l.first == label_name; });
      if (match == labels.end()) {
        return fail(fmt::format("metric \"{}\" is already defined with labels {}", name,
                                labelList(family->label_names)));
      }
      values.push_back(sanitizeUtf8(match->second));
    }
    if (explicit_bounds && bounds != family->bounds) {
      return fail(fmt::format("metric \"{}\" is already defined with other buckets", name));
    }
    if (auto found = family->series.find(values); found != family->series.end()) {
      return found->second;
    }
  } else {
    std::vector<std::string> samples = {name};
    if (type == MetricType::Histogram) {
      samples.insert(samples.end(), {name + "_bucket", name + "_sum", name + "_count"});
    }
    for (const auto& sample : samples) {
      if (auto clash = sample_names_.find(sample); clash != sample_names_.end()) {
        return fail(fmt::format("metric \"{}\" collides with metric \"{}\" (sample name \"{}\")",
                                name, clash->second, sample));
      }
    }
    for (const auto& label : labels) {
      values.push_back(sanitizeUtf8(label.second));
    }
  }

  const uint32_t id = series_count_.load(std::memory_order_relaxed);
  if (id >= kMaxSeries) {
    return fail(fmt::format("too many metric series (at most {})", kMaxSeries));
  }
  if (type == MetricType::Histogram && family == nullptr && !explicit_bounds) {
    bounds = defaultLatencyBounds();
  }
  const std::vector<double>& series_bounds = family != nullptr ? family->bounds : bounds;
  const uint32_t cells = type == MetricType::Gauge ? 0
                         : type == MetricType::Counter
                             ? 1
                             : static_cast<uint32_t>(series_bounds.size()) + 2;
  uint32_t offset = cell_count_;
  if (offset % kBlockCells + cells > kBlockCells) {
    offset = (offset / kBlockCells + 1) * kBlockCells; // a series never spans two blocks
  }
  if (static_cast<uint64_t>(offset) + cells > static_cast<uint64_t>(kMaxBlocks) * kBlockCells) {
    return fail("too many metric cells");
  }

  if (family == nullptr) {
    auto created = std::make_unique<Family>();
    created->name = name;
    created->help = sanitizeUtf8(help);
    created->type = type;
    for (const auto& label : labels) {
      created->label_names.push_back(label.first);
    }
    created->bounds = std::move(bounds);
    family = created.get();
    families_.emplace(name, std::move(created));
    sample_names_.emplace(name, name);
    if (type == MetricType::Histogram) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        sample_names_.emplace(name + suffix, name);
      }
    }
  }

  auto series = std::make_unique<Series>();
  series->type = type;
  series->offset = offset;
  series->bounds = family->bounds.data();
  series->bound_count = static_cast<uint32_t>(family->bounds.size());
  series->family = family;
  for (size_t i = 0; i < values.size(); i++) {
    const std::string& label_name = family->label_names[i];
    if (i > 0) {
      series->prom_labels += ',';
      series->json_labels += ", ";
    }
    series->prom_labels += label_name;
    series->prom_labels += "=\"";
    appendLabelValue(series->prom_labels, values[i]);
    series->prom_labels += '"';
    appendJsonString(series->json_labels, label_name);
    series->json_labels += ": ";
    appendJsonString(series->json_labels, values[i]);
  }
  family->series.emplace(std::move(values), id);

  if (cells > 0) {
    cell_count_ = offset + cells;
    retired_.resize(cell_count_, 0.0);
    growShards();
  }
  auto& chunk = series_chunks_[id / kSeriesChunk];
  if (!chunk) {
    chunk = std::make_unique<const Series*[]>(kSeriesChunk);
  }
  chunk[id % kSeriesChunk] = series.get();
  series_storage_.push_back(std::move(series));
  // Publishes the series, its chunk and the shards' blocks to lock-free readers.
  series_count_.store(id + 1, std::memory_order_release);
  return id;
}

void Registry::growShards() {
  for (auto& shard : shards_) {
    growShard(*shard, cell_count_);
  }
}

const Registry::Series* Registry::find(uint32_t id) const {
  if (id >= series_count_.load(std::memory_order_acquire)) {
    return nullptr;
  }
  return series_chunks_[id / kSeriesChunk][id % kSeriesChunk];
}

Shard* Registry::localShard() {
  if (t_cached_registry == registry_id_) {
    return t_cached_shard;
  }
  return attachThread();
}

Shard* Registry::attachThread() {
  if (t_exiting) {
    return nullptr; // this thread's shards are gone: record into the retired totals
  }
  internal::ThreadShards& mine = threadShards();
  Shard* shard = nullptr;
  for (const auto& [id, s] : mine.entries) {
    if (id == registry_id_) {
      shard = s;
      break;
    }
  }
  if (shard == nullptr) {
    {
      // Forget shards of registries that are gone (their registry freed them).
      LiveRegistries& live = liveRegistries();
      std::lock_guard<std::mutex> lock(live.mutex);
      std::erase_if(mine.entries, [&](const auto& entry) {
        return std::none_of(live.list.begin(), live.list.end(),
                            [&](const auto& l) { return l.first == entry.first; });
      });
    }
    auto created = std::make_unique<Shard>();
    shard = created.get();
    std::lock_guard<std::mutex> lock(mutex_);
    growShard(*shard, cell_count_);
    shards_.push_back(std::move(created));
    mine.entries.emplace_back(registry_id_, shard);
  }
  t_cached_registry = registry_id_;
  t_cached_shard = shard;
  return shard;
}

void Registry::retireShard(Shard* shard) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (uint32_t cell = 0; cell < cell_count_; cell++) {
    std::atomic<double>* block = shard->blocks[cell / kBlockCells].load(std::memory_order_acquire);
    retired_[cell] += block[cell % kBlockCells].load(std::memory_order_relaxed);
  }
  std::erase_if(shards_, [shard](const auto& s) { return s.get() == shard; });
}

void Registry::addRetired(uint32_t cell, double delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  retired_[cell] += delta;
}

void Registry::add(uint32_t id, double delta) {
  const Series* series = find(id);
  if (series == nullptr) {
    return;
  }
  if (series->type == MetricType::Gauge) {
    if (std::isfinite(delta)) {
      series->gauge.fetch_add(delta, std::memory_order_relaxed);
    }
    return;
  }
  if (series->type != MetricType::Counter || !(delta >= 0) || std::isinf(delta)) {
    return; // counters only go up; NaN fails `delta >= 0`
  }
  Shard* shard = localShard();
  if (shard == nullptr) {
    addRetired(series->offset, delta);
    return;
  }
  std::atomic<double>* block =
      shard->blocks[series->offset / kBlockCells].load(std::memory_order_acquire);
  SLUICE_ASSERT(block != nullptr, "metric block allocated at definition");
  bump(block[series->offset % kBlockCells], delta);
}

void Registry::set(uint32_t id, double value) {
  const Series* series = find(id);
  if (series != nullptr && series->type == MetricType::Gauge) {
    series->gauge.store(value, std::memory_order_relaxed);
  }
}

void Registry::observe(uint32_t id, double value) {
  const Series* series = find(id);
  if (series == nullptr || series->type != MetricType::Histogram || !std::isfinite(value)) {
    return;
  }
  // Bucket i counts bounds[i-1] < value <= bounds[i]; bucket bound_count is +Inf.
  const double* end = series->bounds + series->bound_count;
  auto bucket =
      static_cast<uint32_t>(std::lower_bound(series->bounds, end, value) - series->bounds);
  Shard* shard = localShard();
  if (shard == nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    retired_[series->offset + bucket] += 1;
    retired_[series->offset + series->bound_count + 1] += value;
    return;
  }
  std::atomic<double>* block =
      shard->blocks[series->offset / kBlockCells].load(std::memory_order_acquire);
  SLUICE_ASSERT(block != nullptr, "metric block allocated at definition");
  std::atomic<double>* cells = block + series->offset % kBlockCells;
  bump(cells[bucket], 1);
  bump(cells[series->bound_count + 1], value);
}

std::vector<double> Registry::mergeCells() const {
  std::vector<double> total = retired_;
  for (const auto& shard : shards_) {
    for (uint32_t base = 0; base < cell_count_; base += kBlockCells) {
      const std::atomic<double>* block =
          shard->blocks[base / kBlockCells].load(std::memory_order_acquire);
      const uint32_t n = std::min(kBlockCells, cell_count_ - base);
      for (uint32_t i = 0; i < n; i++) {
        total[base + i] += block[i].load(std::memory_order_relaxed);
      }
    }
  }
  return total;
}

double Registry::mergeCell(uint32_t cell) const {
  double total = retired_[cell];
  for (const auto& shard : shards_) {
    const std::atomic<double>* block =
        shard->blocks[cell / kBlockCells].load(std::memory_order_acquire);
    total += block[cell % kBlockCells].load(std::memory_order_relaxed);
  }
  return total;
}

double Registry::value(uint32_t id) const {
  const Series* series = find(id);
  if (series == nullptr) {
    return 0;
  }
  if (series->type == MetricType::Gauge) {
    return series->gauge.load(std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (series->type == MetricType::Counter) {
    return mergeCell(series->offset);
  }
  double count = 0;
  for (uint32_t i = 0; i <= series->bound_count; i++) {
    count += mergeCell(series->offset + i);
  }
  return count;
}

HistogramValue Registry::histogramValue(uint32_t id) const {
  HistogramValue out;
  const Series* series = find(id);
  if (series == nullptr || series->type != MetricType::Histogram) {
    return out;
  }
  out.bounds.assign(series->bounds, series->bounds + series->bound_count);
  std::lock_guard<std::mutex> lock(mutex_);
  double cumulative = 0;
  for (uint32_t i = 0; i <= series->bound_count; i++) {
    cumulative += mergeCell(series->offset + i);
    out.buckets.push_back(static_cast<uint64_t>(cumulative));
  }
  out.sum = mergeCell(series->offset + series->bound_count + 1);
  out.count = out.buckets.back();
  return out;
}

std::string Registry::renderPrometheus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<double> cells = mergeCells();
  std::string out;
  out.reserve(series_storage_.size() * 64 + cells.size() * 48);
  for (const auto& [name, family] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    appendHelp(out, family->help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += typeName(family->type);
    out += '\n';
    for (const auto& [values, id] : family->series) {
      const Series& s = *series_storage_[id];
      if (s.type != MetricType::Histogram) {
        out += name;
        if (!s.prom_labels.empty()) {
          out += '{';
          out += s.prom_labels;
          out += '}';
        }
        out += ' ';
        appendValue(out, s.type == MetricType::Gauge ? s.gauge.load(std::memory_order_relaxed)
                                                     : cells[s.offset]);
        out += '\n';
        continue;
      }
      double cumulative = 0;
      for (uint32_t i = 0; i <= s.bound_count; i++) {
        cumulative += cells[s.offset + i];
        out += name;
        out += "_bucket{";
        out += s.prom_labels;
        out += s.prom_labels.empty() ? "le=\"" : ",le=\"";
        if (i < s.bound_count) {
          appendValue(out, s.bounds[i]);
        } else {
          out += "+Inf";
        }
        out += "\"} ";
        appendValue(out, cumulative);
        out += '\n';
      }
      const std::string braces = s.prom_labels.empty() ? "" : "{" + s.prom_labels + "}";
      out += name;
      out += "_sum";
      out += braces;
      out += ' ';
      appendValue(out, cells[s.offset + s.bound_count + 1]);
      out += '\n';
      out += name;
      out += "_count";
      out += braces;
      out += ' ';
      appendValue(out, cumulative);
      out += '\n';
    }
  }
  return out;
}

std::string Registry::renderJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<double> cells = mergeCells();
  std::string out = "{\"metrics\": [";
  out.reserve(series_storage_.size() * 96 + cells.size() * 32);
  bool first = true;
  for (const auto& [name, family] : families_) {
    for (const auto& [values, id] : family->series) {
      const Series& s = *series_storage_[id];
      out += first ? "\n  {\"name\": " : ",\n  {\"name\": ";
      first = false;
      appendJsonString(out, name);
      out += ", \"type\": \"";
      out += typeName(s.type);
      out += "\", \"labels\": {";
      out += s.json_labels;
      out += '}';
      if (s.type != MetricType::Histogram) {
        out += ", \"value\": ";
        appendJsonNumber(out, s.type == MetricType::Gauge ? s.gauge.load(std::memory_order_relaxed)
                                                          : cells[s.offset]);
        out += '}';
        continue;
      }
      out += ", \"buckets\": [";
      double cumulative = 0;
      for (uint32_t i = 0; i <= s.bound_count; i++) {
        cumulative += cells[s.offset + i];
        out += i == 0 ? "{\"le\": " : ", {\"le\": ";
        if (i < s.bound_count) {
          appendJsonNumber(out, s.bounds[i]);
        } else {
          out += "\"+Inf\"";
        }
        out += ", \"count\": ";
        appendJsonNumber(out, cumulative);
        out += '}';
      }
      out += "], \"sum\": ";
      appendJsonNumber(out, cells[s.offset + s.bound_count + 1]);
      out += ", \"count\": ";
      appendJsonNumber(out, cumulative);
      out += '}';
    }
  }
  out += first ? "]}\n" : "\n]}\n";
  return out;
}

} // namespace sluice::stats
