#include "core/server/bench_filter.h"

#include "core/common/alloc_count.h"
#include "core/config/bench_input.h"
#include "core/config/config.h"
#include "core/event/dispatcher.h"
#include "core/filter/registry.h"
#include "core/filter/snapshot.h"
#include "core/filter/stream.h"
#include "core/filter/worker_context.h"
#include "core/http/codec.h"
#include "core/network/buffer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

namespace sluice::server {

namespace {

struct Options {
  std::string filter;
  std::string module;
  std::string config = "{}";
  std::string requests;
  uint64_t iterations = 200000;
  uint64_t batch = 1000;
  uint32_t response_bytes = 64;
  bool json_out = false;
  int progress = -1; // -1: when stderr is a terminal; 0: never (--no-progress); 1: always
};

using Request = config::BenchRequest;

void benchUsage(FILE* out) {
  std::fputs(
      "usage: sluice bench-filter --filter TYPE [--module lib.so] --config JSON|@file\n"
      "                           [--requests corpus.jsonl] [--iterations N] [--batch N]\n"
      "                           [--response-bytes N] [--json] [--progress|--no-progress]\n"
      "Drives one filter through the real filter manager and C ABI with no network: every\n"
      "routed request is answered in-process by a synthetic upstream (200, N body bytes).\n"
      "Prints ns/request (median and p99 of batches) for the chain with the filter and for\n"
      "an empty chain, their difference (the filter's cost), throughput and heap\n"
      "allocations per request, as a table, or as one line of JSON with --json. Corpus\n"
      "lines: {\"method\", \"path\", \"headers\": {..} or [[name, value], ..], \"body\"};\n"
      "without --requests a small mixed corpus is used. Progress goes to stderr when it is a\n"
      "terminal (a line updated in place) or with --progress (a line about every second).\n",
      out);
}

bool parseU64(const char* s, uint64_t& out, uint64_t max) {
  if (s == nullptr || *s == '\0') {
    return false;
  }
  uint64_t v = 0;
  for (const char* p = s; *p; p++) {
    if (*p < '0' || *p > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    if (v > max) {
      return false;
    }
  }
  out = v;
  return true;
}

bool readFile(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

std::vector<Request> generatedCorpus() {
  const char* chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/124.0.0.0 Safari/537.36";
  const char* gptbot = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                       "GPTBot/1.2; +https://openai.com/gptbot)";
  std::vector<Request> c;
  auto add = [&](const char* m, const char* p, const char* ua, std::string body = "") {
    Request r;
    r.method = m;
    r.path = p;
    r.headers = {{"host", "bench.local"}, {"user-agent", ua}, {"accept", "*/*"}};
    if (!body.empty()) {
      r.headers.emplace_back("content-type", "application/json");
    }
    r.body = std::move(body);
    c.push_back(std::move(r));
  };
  add("GET", "/", chrome);
  add("GET", "/api/v1/items?page=2", chrome);
  add("POST", "/api/v1/items", chrome, R"({"name":"widget","qty":3})");
  add("GET", "/static/app.js", chrome);
  add("GET", "/blog/2026/11/post", gptbot);
  add("GET", "/users/42", "curl/8.4.0");
  add("HEAD", "/healthz", "kube-probe/1.29");
  add("GET", "/api/v1/items/7", chrome);
  return c;
}

// The downstream side of the bench stream: responses are counted and dropped.
class BenchOwner : public filter::StreamOwner {
public:
  network::Buffer& downstreamOut() override { return out_; }
  void flushDownstream() override {
    std::string_view v = out_.view();
    if (!status_seen_ && v.size() >= 12 && v.substr(0, 5) == "HTTP/") {
      status = static_cast<uint32_t>((v[9] - '0') * 100 + (v[10] - '0') * 10 + (v[11] - '0'));
      status_seen_ = true;
    }
    bytes += v.size();
    out_.clear();
  }
  bool downstreamAboveHighWatermark() const override { return false; }
  void readDisableDownstream(bool) override {}
  void onStreamDone(bool) override {
    flushDownstream();
    done = true;
  }
  void onTunnelStart(upstream::UpstreamConnection*) override {}
  void onTunnelData(std::string_view) override {}
  void onTunnelClosed() override {}
  const std::string& peerAddress() const override { return address_; }
  const std::string& peerIp() const override { return ip_; }

  void reset() {
    done = false;
    status_seen_ = false;
    status = 0;
  }

  bool done = false;
  uint32_t status = 0;
  uint64_t bytes = 0;

private:
  network::Buffer out_;
  bool status_seen_ = false;
  std::string address_ = "192.0.2.10:40000";
  std::string ip_ = "192.0.2.10";
};

struct Series {
  std::vector<double> batch_ns; // ns per request, one value per batch
  uint64_t requests = 0;
  uint64_t total_ns = 0;
  uint64_t allocations = 0;

  double median() const { return at(0.5); }
  double p99() const { return at(0.99); }
  double at(double q) const {
    if (batch_ns.empty()) {
      return 0;
    }
    std::vector<double> v = batch_ns;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  }
  double rps() const {
    return total_ns == 0 ? 0 : static_cast<double>(requests) * 1e9 / static_cast<double>(total_ns);
  }
  double allocsPerRequest() const {
    return requests == 0 ? 0 : static_cast<double>(allocations) / static_cast<double>(requests);
  }
};

class Driver {
public:
  Driver(event::Dispatcher& d, filter::WorkerContext& ctx, const std::vector<Request>& corpus)
      : dispatcher_(d), corpus_(corpus), stream_(ctx, owner_), head_(arena_) {}

  // Runs one request to completion. False if it did not finish (a filter waiting forever).
  bool runOne(const filter::WorkerSnapshotPtr& snap, const Request& r) {
    arena_.reset();
    head_.reset();
    owner_.reset();
    head_.method = r.method;
    head_.target = r.path;
    for (const auto& [n, v] : r.headers) {
      head_.headers.addView(n, v);
    }
    if (!r.body.empty()) {
      head_.has_content_length = true;
      head_.content_length = r.body.size();
      head_.no_body = false;
    } else {
      head_.no_body = true;
    }
    stream_.begin(snap, 0, head_, dispatcher_.nowMs());
    if (stream_.active() && !r.body.empty()) {
      stream_.onRequestData(r.body);
    }
    if (stream_.active()) {
      stream_.onRequestEnd();
    }
    if (stream_.active()) {
      // A filter paused on a timer, posted work or an HTTP call: run the loop until it ends.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (stream_.active() && std::chrono::steady_clock::now() < deadline) {
        dispatcher_.runOnce();
      }
      if (stream_.active()) {
        stream_.onDownstreamReset();
        return false;
      }
    }
    // A fixed table, not a map: counting must not allocate inside the measured batch.
    status_counts_[std::min<uint32_t>(owner_.status, kStatusSlots - 1)]++;
    return true;
  }

  // Runs `count` requests, cycling through the corpus.
  bool runBatch(const filter::WorkerSnapshotPtr& snap, uint64_t count, Series* series) {
    uint64_t a0 = allocCount();
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < count; i++) {
      if (!runOne(snap, corpus_[next_++ % corpus_.size()])) {
        return false;
      }
    }
    auto t1 = std::chrono::steady_clock::now();
    uint64_t a1 = allocCount();
    if (series != nullptr) {
      uint64_t ns = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      series->batch_ns.push_back(static_cast<double>(ns) / static_cast<double>(count));
      series->requests += count;
      series->total_ns += ns;
      series->allocations += a1 - a0;
    }
    return true;
  }

  // The statuses counted since the last call (and resets them).
  std::map<uint32_t, uint64_t> takeStatuses() {
    std::map<uint32_t, uint64_t> m;
    for (uint32_t i = 0; i < kStatusSlots; i++) {
      if (status_counts_[i] != 0) {
        m[i] = status_counts_[i];
        status_counts_[i] = 0;
      }
    }
    return m;
  }

private:
  event::Dispatcher& dispatcher_;
  const std::vector<Request>& corpus_;
  BenchOwner owner_;
  filter::Stream stream_;
  http::Arena arena_;
  http::MessageHead head_;
  static constexpr uint32_t kStatusSlots = 600;
  uint64_t status_counts_[kStatusSlots] = {};
  size_t next_ = 0;
};

// How far the measurement is, on stderr: one line redrawn in place on a terminal, else a line
// about every second (with --progress).
class Progress {
public:
  Progress(bool enabled, uint64_t total) : enabled_(enabled), tty_(isatty(2) == 1), total_(total) {
    start_ = last_ = std::chrono::steady_clock::now();
  }
  void update(uint64_t done) {
    if (!enabled_) {
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (done < total_ &&
        now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000))) {
      return;
    }
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::string eta;
    if (done > 0 && done < total_) {
      eta = fmt::format(", ~{:.0f} s left",
                        secs * static_cast<double>(total_ - done) / static_cast<double>(done));
    } else if (done >= total_) {
      eta = fmt::format(" in {:.1f} s", secs);
    }
    std::string line =
        fmt::format("bench-filter: {}/{} requests per series ({:.0f}%){}", done, total_,
                    100.0 * static_cast<double>(done) / static_cast<double>(total_), eta);
    if (tty_) {
      fmt::print(stderr, "\r{}\033[K", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
    shown_ = true;
  }
  // Clears the line on a terminal, so that the results start on a clean one.
  void finish() {
    if (enabled_ && tty_ && shown_) {
      fmt::print(stderr, "\r\033[K");
      std::fflush(stderr);
    }
  }

private:
  bool enabled_;
  bool tty_;
  uint64_t total_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string jsonEscape(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

std::string rewritePointer(const std::string& p) {
  static const std::string kPrefix = "/listeners/0/filters/0/config";
  if (p.rfind(kPrefix, 0) == 0) {
    return "--config" + p.substr(kPrefix.size());
  }
  if (p.rfind("/listeners/0/filters/0", 0) == 0) {
    return "--filter" + p.substr(22);
  }
  return p;
}

} // namespace

int runBenchFilter(int argc, char** argv) {
  Options o;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto need = [&](const char* name) {
      if (v == nullptr) {
        fmt::print(stderr, "sluice bench-filter: {} needs a value\n", name);
        return false;
      }
      i++;
      return true;
    };
    if (a == "-h" || a == "--help") {
      benchUsage(stdout);
      return 0;
    } else if (a == "--filter") {
      if (!need("--filter")) {
        return 1;
      }
      o.filter = v;
    } else if (a == "--module") {
      if (!need("--module")) {
        return 1;
      }
      o.module = v;
    } else if (a == "--config") {
      if (!need("--config")) {
        return 1;
      }
      o.config = v;
    } else if (a == "--requests") {
      if (!need("--requests")) {
        return 1;
      }
      o.requests = v;
    } else if (a == "--iterations" || a == "--batch" || a == "--response-bytes") {
      if (!need(a.c_str())) {
        return 1;
      }
      bool bytes = a == "--response-bytes";
      uint64_t n = 0;
      uint64_t min = bytes ? 0 : 1;
      uint64_t max = bytes ? (1u << 24) : 1000000000ull;
      if (!parseU64(v, n, max) || n < min) {
        fmt::print(stderr, "sluice bench-filter: {}: expected an integer {}..{}, got \"{}\"\n", a,
                   min, max, v);
        return 1;
      }
      if (a == "--iterations") {
        o.iterations = n;
      } else if (a == "--batch") {
        o.batch = n;
      } else {
        o.response_bytes = static_cast<uint32_t>(n);
      }
    } else if (a == "--json") {
      o.json_out = true;
    } else if (a == "--progress" || a == "--no-progress") {
      o.progress = a == "--progress" ? 1 : 0;
    } else {
      fmt::print(stderr, "sluice bench-filter: unknown argument \"{}\"\n", a);
      benchUsage(stderr);
      return 1;
    }
  }
  if (o.filter.empty()) {
    fmt::print(stderr, "sluice bench-filter: --filter TYPE is required\n");
    benchUsage(stderr);
    return 1;
  }
  o.batch = std::min(o.batch, o.iterations);

  // The filter's config.
  std::string config_text = o.config;
  std::string base_dir = std::filesystem::current_path().string();
  if (!config_text.empty() && config_text[0] == '@') {
    std::string path = config_text.substr(1);
    if (!readFile(path, config_text)) {
      fmt::print(stderr, "sluice bench-filter: --config: cannot read \"{}\"\n", path);
      return 1;
    }
    base_dir = std::filesystem::absolute(path).parent_path().string();
  }
  std::vector<Request> corpus;
  if (o.requests.empty()) {
    corpus = generatedCorpus();
  } else {
    std::string error;
    if (!config::loadBenchCorpus(o.requests, corpus, error)) {
      fmt::print(stderr, "sluice bench-filter: {}\n", error);
      return 1;
    }
  }

  // A one-listener config around the filter; clusters it names exist. Unless the filter is
  // the router, a catch-all router to the synthetic upstream follows it, so requests take the
  // usual proxied path; the baseline is that router alone (or, for the router, a catch-all
  // route table; without a built-in router, an empty chain).
  bool have_router = filter::Registry::global().findBuiltin("router") != nullptr;
  config::BenchDocuments docs;
  {
    std::string error;
    std::string module = o.module.empty() ? "" : std::filesystem::absolute(o.module).string();
    if (!config::benchDocuments(o.filter, module, config_text, have_router, docs, error)) {
      fmt::print(stderr, "sluice bench-filter: {}\n", error);
      return 1;
    }
  }
  config::LoadResult load = config::parseConfig(docs.chain, base_dir);
  std::vector<config::ConfigError> errors = load.errors;
  filter::SnapshotPtr chain;
  filter::SnapshotPtr baseline;
  if (errors.empty()) {
    filter::BuildResult built = filter::buildSnapshot(load.config, 1);
    errors = built.errors;
    chain = built.snapshot;
  }
  if (errors.empty()) {
    std::shared_ptr<const config::Config> base_config;
    if (have_router) {
      config::LoadResult l2 = config::parseConfig(docs.baseline, base_dir);
      base_config = l2.config;
      errors = l2.errors;
    } else {
      auto empty = std::make_shared<config::Config>(*load.config);
      empty->listeners[0].filters.clear();
      base_config = empty;
    }
    if (errors.empty()) {
      filter::BuildResult b2 = filter::buildSnapshot(base_config, 2);
      baseline = b2.snapshot;
      errors = b2.errors;
    }
  }
  if (!errors.empty()) {
    for (const auto& e : errors) {
      fmt::print(stderr, "config error: {}: {}\n", rewritePointer(e.pointer), e.message);
    }
    return 1;
  }
  std::string origin = "built-in";
  if (!o.module.empty()) {
    origin = std::filesystem::absolute(o.module).string();
  }

  int rc = 0;
  {
    event::Dispatcher dispatcher;
    filter::WorkerContext ctx(dispatcher, 0);
    filter::SyntheticUpstream synthetic;
    synthetic.body.assign(o.response_bytes, 'x');
    ctx.setSyntheticUpstream(&synthetic);
    ctx.install(baseline);
    filter::WorkerSnapshotPtr ws_base = ctx.current();
    ctx.install(chain);
    filter::WorkerSnapshotPtr ws_chain = ctx.current();

    Series s_chain, s_base;
    {
      Driver driver(dispatcher, ctx, corpus);
      uint64_t warm = std::max<uint64_t>(std::min<uint64_t>(o.iterations / 10, 2000), 1);
      bool ok = driver.runBatch(ws_base, warm, nullptr) && driver.runBatch(ws_chain, warm, nullptr);
      driver.takeStatuses();
      std::map<uint32_t, uint64_t> chain_statuses;
      Progress progress(o.progress == 1 || (o.progress == -1 && isatty(2) == 1), o.iterations);
      progress.update(0);
      enableAllocCount(true);
      // Alternate batches so both series see the same machine conditions.
      for (uint64_t done = 0; ok && done < o.iterations; done += o.batch) {
        uint64_t n = std::min(o.batch, o.iterations - done);
        ok = driver.runBatch(ws_chain, n, &s_chain);
        if (ok) {
          for (auto& [st, c] : driver.takeStatuses()) {
            chain_statuses[st] += c;
          }
          ok = driver.runBatch(ws_base, n, &s_base);
          driver.takeStatuses();
        }
        if (ok) {
          enableAllocCount(false); // the progress line's formatting is not the filter's
          progress.update(done + n);
          enableAllocCount(true);
        }
      }
      enableAllocCount(false);
      progress.finish();
      if (!ok) {
        fmt::print(stderr, "sluice bench-filter: a request did not finish within 10 s (the filter "
                           "paused the stream and never resumed it)\n");
        rc = 1;
      } else {
        double cost = s_chain.median() - s_base.median();
        bool allocs = allocCountAvailable();
        if (o.json_out) {
          auto num = [&](double v) { return fmt::format("{:.6g}", v); };
          auto allocs_of = [&](double v) { return allocs ? num(v) : std::string("null"); };
          auto series = [&](const Series& s) {
            return fmt::format("{{\"median_ns\": {}, \"p99_ns\": {}, \"throughput_rps\": {}, "
                               "\"requests\": {}, \"allocs_per_request\": {}}}",
                               num(s.median()), num(s.p99()), num(s.rps()), s.requests,
                               allocs_of(s.allocsPerRequest()));
          };
          std::string st;
          for (auto& [k, c] : chain_statuses) {
            st += fmt::format("{}\"{}\": {}", st.empty() ? "" : ", ", k, c);
          }
          // One line, for scripts that collect one result per line.
          fmt::print("{{\"filter\": \"{}\", \"origin\": \"{}\", \"iterations\": {}, "
                     "\"batch\": {}, \"corpus_requests\": {}, \"chain\": {}, "
                     "\"baseline\": {}, \"filter_ns\": {}, "
                     "\"filter_allocs_per_request\": {}, \"statuses\": {{{}}}}}\n",
                     jsonEscape(o.filter), jsonEscape(origin), o.iterations, o.batch, corpus.size(),
                     series(s_chain), series(s_base), num(cost),
                     allocs_of(s_chain.allocsPerRequest() - s_base.allocsPerRequest()), st);
        } else {
          fmt::print("filter      {} ({})\n", o.filter, origin);
          fmt::print("requests    {} per series in batches of {}; corpus of {} request(s){}\n",
                     o.iterations, o.batch, corpus.size(),
                     o.requests.empty() ? " (generated)" : "");
          std::string sts;
          for (auto& [k, c] : chain_statuses) {
            sts += fmt::format("{}{}: {}", sts.empty() ? "" : ", ", k, c);
          }
          fmt::print("responses   {}\n\n", sts);
          fmt::print("{:<10} {:>14} {:>12} {:>14} {:>12}\n", "", "median ns/req", "p99 ns/req",
                     "requests/s", "allocs/req");
          auto row = [&](const char* name, const Series& s) {
            fmt::print("{:<10} {:>14.0f} {:>12.0f} {:>14.0f} {:>12}\n", name, s.median(), s.p99(),
                       s.rps(), allocs ? fmt::format("{:.2f}", s.allocsPerRequest()) : "n/a");
          };
          row("chain", s_chain);
          row("baseline", s_base);
          fmt::print(
              "{:<10} {:>14.0f} {:>12} {:>14} {:>12}\n", "filter", cost, "", "",
              allocs ? fmt::format("{:.2f}", s_chain.allocsPerRequest() - s_base.allocsPerRequest())
                     : "n/a");
          fmt::print("\nfilter cost {:.0f} ns/request (median of chain - median of baseline; "
                     "baseline: {})",
                     cost, have_router ? "a catch-all router" : "an empty chain");
          if (allocs) {
            fmt::print(", {:.2f} allocations/request",
                       s_chain.allocsPerRequest() - s_base.allocsPerRequest());
          }
          fmt::print("\n");
        }
      }
    }
    ws_chain.reset();
    ws_base.reset();
    ctx.shutdown();
    dispatcher.closeAll();
  }
  return rc;
}

} // namespace sluice::server
