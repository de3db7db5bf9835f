#pragma once

// Drives the access_log filter through its C ABI entry point and descriptor, on the fake host.

#include "filters/access_log/access_log_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

class TempDir {
public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "sluice-access-log-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Complete lines of a file (a trailing fragment without '\n' is returned as one more line, so a
// split line shows up in the count and the parse).
inline std::vector<std::string> readLines(const std::string& path) {
  const std::string text = readFile(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

inline bool waitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// One filter config with its workers, created and destroyed in the host's order: workers first,
// then the config.
class AccessLogHarness {
public:
  AccessLogHarness() {
    module_ = sluice_builtin_access_log_init(host.table(), SLUICE_ABI_VERSION_MAJOR,
                                             SLUICE_ABI_VERSION_MINOR);
    if (module_ != nullptr && module_->filter_count == 1) {
      desc = module_->filters[0];
    }
  }
  ~AccessLogHarness() { destroyConfig(); }

  // sluice_on_config_new (the check), then sluice_on_config_start as the host does when the
  // config goes live (unless check_only); true if the config was accepted and started.
  bool load(const std::string& json, bool check_only = false) {
    destroyConfig();
    ctx.errors.clear();
    config = desc->sluice_on_config_new(host.table(), ctx.handle(), {json.data(), json.size()});
    if (config != nullptr && !check_only && !desc->sluice_on_config_start(config)) {
      desc->sluice_on_config_destroy(config);
      config = nullptr;
    }
    return config != nullptr;
  }

  FakeWorker& addWorker() {
    workers_.push_back(std::make_unique<FakeWorker>());
    FakeWorker& w = *workers_.back();
    w.index = static_cast<uint32_t>(workers_.size() - 1);
    states_.push_back(desc->sluice_on_worker_new(config, w.handle()));
    return w;
  }
  void* workerState(size_t i) const { return states_[i]; }

  // A whole stream's life as the filter sees it: new, complete (the log hook), destroy.
  void complete(FakeStream& stream, size_t worker = 0) {
    stream.worker = workers_[worker].get();
    void* filter = desc->sluice_on_stream_new(config, states_[worker], stream.handle());
    if (filter == nullptr) {
      return;
    }
    desc->sluice_on_stream_complete(filter, stream.handle());
    desc->sluice_on_stream_destroy(filter);
  }

  void destroyWorker(size_t i) {
    if (states_[i] != nullptr) {
      desc->sluice_on_worker_destroy(config, states_[i]);
      states_[i] = nullptr;
    }
  }

  // Destroys every worker state still alive, then the config (which drains the writer).
  void destroyConfig() {
    if (config == nullptr) {
      return;
    }
    for (size_t i = 0; i < states_.size(); i++) {
      if (states_[i] != nullptr) {
        desc->sluice_on_worker_destroy(config, states_[i]);
        states_[i] = nullptr;
      }
    }
    desc->sluice_on_config_destroy(config);
    config = nullptr;
    states_.clear();
    workers_.clear();
  }

  void reopen() { desc->sluice_on_log_reopen(config); }

  FakeWorker& worker(size_t i) { return *workers_[i]; }

  FakeHost host;
  FakeConfigCtx ctx;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;

private:
  const sluice_module_t* module_ = nullptr;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<void*> states_;
};

} // namespace sluice::testing
