#include "core/stats/registry.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

namespace sluice::stats {

struct Registry::Family {
  std::string name;
  std::string help;
  MetricType type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  std::vector<Series*> series;
};

struct Registry::Shard {
  std::atomic<std::atomic<double>*> blocks[kMaxBlocks];
  Shard() {
    for (auto& b : blocks) {
      b.store(nullptr, std::memory_order_relaxed);
    }
  }
  ~Shard() {
    for (auto& b : blocks) {
      delete[] b.load(std::memory_order_relaxed);
    }
  }
};

namespace {
std::atomic<uint64_t> g_next_registry{1};

const std::vector<double>& defaultBounds() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

void addRelaxed(std::atomic<double>& c, double v) {
  // Single writer per shard: a load and a store, no read-modify-write contention.
  c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

void addShared(std::atomic<double>& c, double v) {
  double cur = c.load(std::memory_order_relaxed);
  while (!c.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escapeJson(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string formatNumber(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (std::isnan(v)) {
    return "NaN";
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return fmt::format("{}", v);
}

std::string jsonNumber(double v) {
  if (std::isinf(v) || std::isnan(v)) {
    return "null";
  }
  return formatNumber(v);
}

const char* typeName(MetricType t) {
  switch (t) {
  case MetricType::Counter:
    return "counter";
  case MetricType::Gauge:
    return "gauge";
  case MetricType::Histogram:
    return "histogram";
  }
  return "untyped";
}

} // namespace

bool validMetricName(const std::string& name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool validLabelName(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) {
    return false;
  }
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

Registry::Registry()
    : series_(new std::atomic<Series*>[kMaxSeries]), registry_id_(g_next_registry.fetch_add(1)) {
  for (uint32_t i = 0; i < kMaxSeries; i++) {
    series_[i].store(nullptr, std::memory_order_relaxed);
  }
}

Registry::~Registry() {
  uint32_t n = series_count_.load();
  for (uint32_t i = 0; i < n; i++) {
    delete series_[i].load();
  }
}

Registry& Registry::global() {
  static Registry* r = new Registry(); // lives for the whole process (threads may record late)
  return *r;
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
  if (bounds.empty()) {
    bounds = defaultBounds();
  }
  return define(MetricType::Histogram, name, help, labels, std::move(bounds), error);
}

uint32_t Registry::define(MetricType type, const std::string& name, const std::string& help,
                          const Labels& labels, std::vector<double> bounds, std::string* error) {
  auto fail = [&](std::string m) {
    if (error != nullptr) {
      *error = std::move(m);
    }
    return kInvalidId;
  };
  if (!validMetricName(name)) {
    return fail("invalid metric name \"" + name + "\"");
  }
  for (const auto& [k, v] : labels) {
    if (!validLabelName(k) || (type == MetricType::Histogram && k == "le")) {
      return fail("invalid label name \"" + k + "\"");
    }
  }
  for (size_t i = 1; i < bounds.size(); i++) {
    if (!(bounds[i] > bounds[i - 1])) {
      return fail("histogram bounds must be strictly ascending");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Family* fam = nullptr;
  for (auto& f : families_) {
    if (f->name == name) {
      fam = f.get();
      break;
    }
  }
  std::vector<std::string> names;
  for (const auto& [k, v] : labels) {
    names.push_back(k);
  }
  if (fam != nullptr) {
    if (fam->type != type) {
      return fail(fmt::format("metric \"{}\" is already a {}", name, typeName(fam->type)));
    }
    if (fam->label_names != names) {
      return fail(fmt::format("metric \"{}\" is already defined with other label names", name));
    }
    for (Series* s : fam->series) {
      if (s->labels == labels) {
        uint32_t n = series_count_.load();
        for (uint32_t i = 0; i < n; i++) {
          if (series_[i].load() == s) {
            return i;
          }
        }
      }
    }
  } else {
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = type;
    f->label_names = names;
    f->bounds = bounds;
    fam = f.get();
    families_.push_back(std::move(f));
  }
  uint32_t id = series_count_.load();
  uint32_t cells =
      type == MetricType::Histogram ? static_cast<uint32_t>(fam->bounds.size()) + 3 : 1;
  if (id >= kMaxSeries || next_cell_ + cells > kMaxBlocks * kBlockCells) {
    return fail("too many metric series");
  }
  // Keep a histogram's cells inside one block.
  if (next_cell_ / kBlockCells != (next_cell_ + cells - 1) / kBlockCells) {
    next_cell_ = (next_cell_ / kBlockCells + 1) * kBlockCells;
  }
  auto* s = new Series;
  s->family = fam;
  s->type = type;
  s->labels = labels;
  s->offset = next_cell_;
  s->cells = cells;
  next_cell_ += cells;
  fam->series.push_back(s);
  series_[id].store(s, std::memory_order_release);
  series_count_.store(id + 1, std::memory_order_release);
  return id;
}

Registry::Shard& Registry::localShard() {
  // One shard per (thread, registry): tests create registries of their own.
  thread_local std::vector<std::pair<uint64_t, Shard*>> shards;
  for (auto& [rid, sh] : shards) {
    if (rid == registry_id_) {
      return *sh;
    }
  }
  auto s = std::make_unique<Shard>();
  Shard* raw = s.get();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shards_.push_back(std::move(s));
  }
  shards.emplace_back(registry_id_, raw);
  return *raw;
}

std::atomic<double>* Registry::cell(Shard& s, uint32_t index) {
  uint32_t b = index / kBlockCells;
  std::atomic<double>* block = s.blocks[b].load(std::memory_order_acquire);
  if (block == nullptr) {
    block = new std::atomic<double>[kBlockCells];
    for (uint32_t i = 0; i < kBlockCells; i++) {
      block[i].store(0, std::memory_order_relaxed);
    }
    s.blocks[b].store(block, std::memory_order_release);
  }
  return &block[index % kBlockCells];
}

void Registry::add(uint32_t id, double delta) {
  if (id >= series_count_.load(std::memory_order_acquire)) {
    return;
  }
  Series* s = series_[id].load(std::memory_order_acquire);
  if (s->type == MetricType::Gauge) {
    addShared(s->gauge, delta);
  } else if (s->type == MetricType::Counter) {
    if (delta < 0) {
      return; // counters only go up
    }
    addRelaxed(*cell(localShard(), s->offset), delta);
  }
}

void Registry::set(uint32_t id, double value) {
  if (id >= series_count_.load(std::memory_order_acquire)) {
    return;
  }
  Series* s = series_[id].load(std::memory_order_acquire);
  if (s->type == MetricType::Gauge) {
    s->gauge.store(value, std::memory_order_relaxed);
  }
}

void Registry::observe(uint32_t id, double value) {
  if (id >= series_count_.load(std::memory_order_acquire)) {
    return;
  }
  Series* s = series_[id].load(std::memory_order_acquire);
  if (s->type != MetricType::Histogram) {
    return;
  }
  const auto& bounds = s->family->bounds;
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  Shard& sh = localShard();
  std::atomic<double>* base = cell(sh, s->offset); // a histogram never spans two blocks
  addRelaxed(base[i], 1);
  addRelaxed(base[bounds.size() + 1], value);
  addRelaxed(base[bounds.size() + 2], 1);
}

double Registry::merged(uint32_t index) const {
  double total = 0;
  uint32_t b = index / kBlockCells;
  for (const auto& sh : shards_) {
    std::atomic<double>* block = sh->blocks[b].load(std::memory_order_acquire);
    if (block != nullptr) {
      total += block[index % kBlockCells].load(std::memory_order_relaxed);
    }
  }
  return total;
}

double Registry::value(uint32_t id) const {
  if (id >= series_count_.load()) {
    return 0;
  }
  Series* s = series_[id].load();
  std::lock_guard<std::mutex> lock(mutex_);
  if (s->type == MetricType::Gauge) {
    return s->gauge.load();
  }
  if (s->type == MetricType::Histogram) {
    return merged(s->offset + s->cells - 1);
  }
  return merged(s->offset);
}

uint64_t Registry::histogramCount(uint32_t id) const {
  if (id >= series_count_.load()) {
    return 0;
  }
  Series* s = series_[id].load();
  std::lock_guard<std::mutex> lock(mutex_);
  return s->type == MetricType::Histogram ? static_cast<uint64_t>(merged(s->offset + s->cells - 1))
                                          : 0;
}

std::string Registry::renderPrometheus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<const Family*> fams;
  for (const auto& f : families_) {
    fams.push_back(f.get());
  }
  std::sort(fams.begin(), fams.end(),
            [](const Family* a, const Family* b) { return a->name < b->name; });
  std::string out;
  for (const Family* f : fams) {
    out +=
        fmt::format("# HELP {} {}\n# TYPE {} {}\n", f->name, f->help, f->name, typeName(f->type));
    for (const Series* s : f->series) {
      std::string labels;
      for (const auto& [k, v] : s->labels) {
        labels += (labels.empty() ? "" : ",") + k + "=\"" + escapeLabel(v) + "\"";
      }
      if (s->type == MetricType::Histogram) {
        double cumulative = 0;
        for (size_t i = 0; i <= f->bounds.size(); i++) {
          cumulative += merged(s->offset + static_cast<uint32_t>(i));
          std::string le = i < f->bounds.size() ? formatNumber(f->bounds[i]) : "+Inf";
          out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", f->name, labels,
                             labels.empty() ? "" : ",", le, formatNumber(cumulative));
        }
        std::string braces = labels.empty() ? "" : "{" + labels + "}";
        out += fmt::format("{}_sum{} {}\n", f->name, braces,
                           formatNumber(merged(s->offset + s->cells - 2)));
        out += fmt::format("{}_count{} {}\n", f->name, braces,
                           formatNumber(merged(s->offset + s->cells - 1)));
      } else {
        double v = s->type == MetricType::Gauge ? s->gauge.load() : merged(s->offset);
        std::string braces = labels.empty() ? "" : "{" + labels + "}";
        out += fmt::format("{}{} {}\n", f->name, braces, formatNumber(v));
      }
    }
  }
  return out;
}

std::string Registry::renderJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<const Family*> fams;
  for (const auto& f : families_) {
    fams.push_back(f.get());
  }
  std::sort(fams.begin(), fams.end(),
            [](const Family* a, const Family* b) { return a->name < b->name; });
  std::string out = "{\"metrics\": [";
  bool first = true;
  for (const Family* f : fams) {
    for (const Series* s : f->series) {
      out += first ? "\n" : ",\n";
      first = false;
      std::string labels;
      for (const auto& [k, v] : s->labels) {
        labels += fmt::format("{}\"{}\": \"{}\"", labels.empty() ? "" : ", ", escapeJson(k),
                              escapeJson(v));
      }
      out += fmt::format("  {{\"name\": \"{}\", \"type\": \"{}\", \"labels\": {{{}}}", f->name,
                         typeName(f->type), labels);
      if (s->type == MetricType::Histogram) {
        std::string buckets;
        double cumulative = 0;
        for (size_t i = 0; i <= f->bounds.size(); i++) {
          cumulative += merged(s->offset + static_cast<uint32_t>(i));
          std::string le = i < f->bounds.size() ? jsonNumber(f->bounds[i]) : "\"+Inf\"";
          buckets += fmt::format("{}{{\"le\": {}, \"count\": {}}}", i ? ", " : "", le,
                                 jsonNumber(cumulative));
        }
        out += fmt::format(", \"buckets\": [{}], \"sum\": {}, \"count\": {}}}", buckets,
                           jsonNumber(merged(s->offset + s->cells - 2)),
                           jsonNumber(merged(s->offset + s->cells - 1)));
      } else {
        double v = s->type == MetricType::Gauge ? s->gauge.load() : merged(s->offset);
        out += fmt::format(", \"value\": {}}}", jsonNumber(v));
      }
    }
  }
  out += "\n]}\n";
  return out;
}

} // namespace sluice::stats
