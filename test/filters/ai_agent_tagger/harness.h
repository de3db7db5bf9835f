#pragma once

// Drives the ai_agent_tagger filter through its C ABI entry point and descriptor on the fake
// host, and finds the reference data (data/ in the repository) for the corpus-driven tests.

#include "filters/ai_agent_tagger/ai_agent_tagger_filter.h"
#include "sluice/filter.h"
#include "test/filters/ai_agent_tagger/browsers.h"
#include "test/filters/common/fake_host.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::testing {

// Allocations through operator new on this thread so far (alloc_count_test.cc).
uint64_t allocationCount();

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The reference data in the repository's data/ folder: $SLUICE_DATA_DIR (set by ctest), else
// found from this file's place in the tree.
inline std::string sharedDataDir() {
  if (const char* env = std::getenv("SLUICE_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  const std::filesystem::path here(__FILE__); // <source>/test/filters/ai_agent_tagger/harness.h
  return (here.parent_path().parent_path().parent_path().parent_path() / "data").string();
}

inline nlohmann::json loadJson(const std::string& path) {
  return nlohmann::json::parse(readFile(path), nullptr, false);
}

inline nlohmann::json builtinTaxonomyJson() {
  const std::string_view t = filters::ai_agent_tagger::builtinTaxonomy();
  return nlohmann::json::parse(t.begin(), t.end(), nullptr, false);
}

class TempDir {
public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "sluice-ai-tagger-XXXXXX").string();
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

  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// Real User-Agents of ordinary browsers (desktop and mobile): none of them is an AI agent.

// One filter config and one worker on a fresh fake host.
class Tagger {
public:
  explicit Tagger(const std::string& json, const std::string& base_dir = "/etc/sluice") {
    const sluice_module_t* m = sluice_builtin_ai_agent_tagger_init(
        host.table(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    d_ = m->filters[0];
    ctx.name = "ai_agent_tagger";
    ctx.base_dir = base_dir;
    config_ = d_->sluice_on_config_new(host.table(), ctx.handle(), {json.data(), json.size()});
    if (config_ != nullptr) {
      worker_state_ = d_->sluice_on_worker_new(config_, worker.handle());
    }
  }
  ~Tagger() {
    if (worker_state_ != nullptr) {
      d_->sluice_on_worker_destroy(config_, worker_state_);
    }
    if (config_ != nullptr) {
      d_->sluice_on_config_destroy(config_);
    }
  }
  Tagger(const Tagger&) = delete;
  Tagger& operator=(const Tagger&) = delete;

  bool ok() const { return config_ != nullptr && worker_state_ != nullptr; }

  // Runs the request-headers hook on a stream with `headers` added to the defaults.
  sluice_status_t run(FakeStream& s, const HeaderList& headers = {}) {
    s.worker = &worker;
    for (const auto& h : headers) {
      s.request_headers.push_back(h);
    }
    void* f = d_->sluice_on_stream_new(config_, worker_state_, s.handle());
    const sluice_status_t st = d_->sluice_on_request_headers(f, s.handle(), true);
    if (d_->sluice_on_stream_complete != nullptr) {
      d_->sluice_on_stream_complete(f, s.handle());
    }
    d_->sluice_on_stream_destroy(f);
    return st;
  }

  // The agent a User-Agent is tagged as ("" when none).
  std::string agentOf(const std::string& ua) {
    FakeStream s;
    run(s, {{"user-agent", ua}});
    return metadata(s, "ai.agent");
  }

  static std::string metadata(const FakeStream& s, const std::string& key) {
    for (const auto& [k, v] : s.metadata) {
      if (k == key) {
        return v;
      }
    }
    return "";
  }
  static std::vector<std::string> headers(const FakeStream& s, const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [k, v] : s.request_headers) {
      if (FakeStream::iequals(k, name)) {
        out.push_back(v);
      }
    }
    return out;
  }

  FakeHost host;
  FakeConfigCtx ctx;
  FakeWorker worker;

private:
  const sluice_filter_descriptor_t* d_ = nullptr;
  void* config_ = nullptr;
  void* worker_state_ = nullptr;
};

} // namespace sluice::testing
