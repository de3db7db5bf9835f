// access_log: one line per finished stream, formatted on the worker into a per-worker buffer and
// written by the config's writer thread (never a blocking write on a worker). Only the C ABI.

#include "filters/access_log/formatter.h"
#include "filters/access_log/writer.h"
#include "sluice/filter.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace sluice::filters::access_log {

namespace {

const sluice_host_t* g_host = nullptr;
using json = nlohmann::json;

std::string_view sv(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t st(std::string_view v) {
  return {v.data(), v.size()};
}

struct Config {
  std::unique_ptr<Formatter> formatter;
  std::unique_ptr<Writer> writer;
  uint32_t status_min = 0;
  uint64_t min_duration_ms = 0;
  double sample = 1.0;
  bool has_when = false;
  size_t buffer_bytes = 65536;
  uint64_t flush_ms = 1000;
};

struct WorkerState {
  Config* config;
  sluice_worker_t* worker;
  std::string buf;
  sluice_timer_id_t timer = 0;
  std::mt19937_64 rng{std::random_device{}()};
  Record record;
};

void error(sluice_config_ctx_t* ctx, const std::string& ptr, const std::string& msg) {
  g_host->sluice_host_config_error(ctx, st(ptr), st(msg));
}

void* configNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t text) {
  g_host = host;
  json root;
  try {
    root = json::parse(sv(text));
  } catch (const json::exception& e) {
    error(ctx, "", std::string("invalid JSON: ") + e.what());
    return nullptr;
  }
  auto cfg = std::make_unique<Config>();
  bool ok = true;
  auto fail = [&](const std::string& p, const std::string& m) {
    error(ctx, p, m);
    ok = false;
  };
  if (!root.is_object()) {
    fail("", "expected an object");
    return nullptr;
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    static const char* kKeys[] = {"path", "format", "when", "buffer_bytes", "flush_ms"};
    if (std::none_of(std::begin(kKeys), std::end(kKeys),
                     [&](const char* k) { return it.key() == k; })) {
      fail("/" + it.key(), "unknown key \"" + it.key() + "\"");
    }
  }
  std::string path = "stdout";
  if (root.contains("path")) {
    if (!root["path"].is_string() || root["path"].get<std::string>().empty()) {
      fail("/path", "expected \"stdout\", \"stderr\" or a file path");
    } else {
      path = root["path"].get<std::string>();
    }
  }
  Format format = Format::Json;
  std::vector<Segment> segments;
  if (root.contains("format")) {
    const json& f = root["format"];
    if (f.is_string() && f.get<std::string>() == "json") {
      format = Format::Json;
    } else if (f.is_string() && f.get<std::string>() == "combined") {
      format = Format::Combined;
    } else if (f.is_object() && f.size() == 1 && f.contains("template") &&
               f["template"].is_string()) {
      format = Format::Template;
      std::string err;
      if (!parseTemplate(f["template"].get<std::string>(), segments, err)) {
        fail("/format/template", err);
      }
    } else {
      fail("/format", "expected \"json\", \"combined\" or {\"template\": \"...\"}");
    }
  }
  auto uintField = [&](const json& o, const std::string& base, const char* key, uint64_t min,
                       uint64_t max, uint64_t& out) {
    if (!o.contains(key)) {
      return;
    }
    const json& v = o[key];
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
        v.get<uint64_t>() < min || v.get<uint64_t>() > max) {
      fail(base + "/" + key,
           "expected an integer " + std::to_string(min) + ".." + std::to_string(max));
      return;
    }
    out = v.get<uint64_t>();
  };
  if (root.contains("when")) {
    const json& w = root["when"];
    if (!w.is_object()) {
      fail("/when", "expected an object");
    } else {
      cfg->has_when = true;
      for (auto it = w.begin(); it != w.end(); ++it) {
        if (it.key() != "status_min" && it.key() != "min_duration_ms" && it.key() != "sample") {
          fail("/when/" + it.key(), "unknown key \"" + it.key() + "\"");
        }
      }
      uint64_t status_min = 0;
      uintField(w, "/when", "status_min", 100, 599, status_min);
      cfg->status_min = static_cast<uint32_t>(status_min);
      uintField(w, "/when", "min_duration_ms", 0, 86400000, cfg->min_duration_ms);
      if (w.contains("sample")) {
        if (!w["sample"].is_number() || w["sample"].get<double>() < 0 ||
            w["sample"].get<double>() > 1) {
          fail("/when/sample", "expected a number 0..1");
        } else {
          cfg->sample = w["sample"].get<double>();
        }
      }
    }
  }
  uint64_t buffer_bytes = 65536;
  uintField(root, "", "buffer_bytes", 0, 64ull * 1024 * 1024, buffer_bytes);
  cfg->buffer_bytes = buffer_bytes;
  uintField(root, "", "flush_ms", 1, 3600000, cfg->flush_ms);
  if (!ok) {
    return nullptr;
  }
  if (path != "stdout" && path != "stderr") {
    char resolved[4096];
    size_t n = host->sluice_host_config_resolve_path(ctx, st(path), resolved, sizeof(resolved));
    if (n == 0) {
      fail("/path", "path too long");
      return nullptr;
    }
    path.assign(resolved, n);
  }
  std::string err;
  cfg->writer = Writer::open(path, err);
  if (!cfg->writer) {
    fail("/path", err);
    return nullptr;
  }
  cfg->formatter = std::make_unique<Formatter>(format, std::move(segments));
  return cfg.release();
}

void configDestroy(void* c) {
  delete static_cast<Config*>(c);
}

void logReopen(void* c) {
  static_cast<Config*>(c)->writer->reopen();
}

void onFlushTimer(void* p) {
  auto* ws = static_cast<WorkerState*>(p);
  ws->config->writer->submit(ws->buf);
  ws->timer =
      g_host->sluice_host_timer_start(ws->worker, nullptr, ws->config->flush_ms, onFlushTimer, ws);
}

void* workerNew(void* c, sluice_worker_t* w) {
  auto* ws = new WorkerState{static_cast<Config*>(c), w};
  ws->buf.reserve(ws->config->buffer_bytes + 4096);
  ws->record.metadata.reserve(8);
  ws->timer = g_host->sluice_host_timer_start(w, nullptr, ws->config->flush_ms, onFlushTimer, ws);
  return ws;
}

void workerDestroy(void*, void* p) {
  auto* ws = static_cast<WorkerState*>(p);
  if (ws->timer != 0) {
    g_host->sluice_host_timer_cancel(ws->worker, ws->timer);
  }
  ws->config->writer->submit(ws->buf); // nothing is lost at shutdown
  delete ws;
}

// The per-stream object is the worker state itself: nothing to allocate per request.
void* streamNew(void*, void* ws, sluice_stream_t*) {
  return ws;
}
void streamDestroy(void*) {}

struct LookupCtx {
  sluice_stream_t* stream;
};

bool lookup(void* ctx, int map, std::string_view name, std::string_view* out) {
  sluice_str_t v;
  auto* s = static_cast<sluice_stream_t*>(ctx);
  if (!g_host->sluice_host_header_get(
          s, map == 0 ? SLUICE_HEADERS_REQUEST : SLUICE_HEADERS_RESPONSE, st(name), 0, &v)) {
    return false;
  }
  *out = sv(v);
  return true;
}

void onComplete(void* p, sluice_stream_t* s) {
  auto* ws = static_cast<WorkerState*>(p);
  const Config& cfg = *ws->config;
  sluice_stream_info_t info{};
  info.size = sizeof(info);
  g_host->sluice_host_stream_info(s, &info);
  if (cfg.has_when) {
    if (info.response_status < cfg.status_min) {
      return;
    }
    if (info.duration_us < cfg.min_duration_ms * 1000) {
      return;
    }
    if (cfg.sample < 1.0 &&
        static_cast<double>(ws->rng() >> 11) * (1.0 / 9007199254740992.0) >= cfg.sample) {
      return;
    }
  }
  Record& r = ws->record;
  r.start_unix_us = info.start_unix_us;
  r.request_id = sv(info.request_id);
  r.client = sv(info.client_address);
  r.client_ip = sv(info.client_ip);
  r.protocol = sv(info.protocol);
  r.upstream_cluster = sv(info.upstream_cluster);
  r.upstream_endpoint = sv(info.upstream_endpoint);
  r.status = info.response_status;
  r.bytes_in = info.bytes_in;
  r.bytes_out = info.bytes_out;
  r.duration_us = info.duration_us;
  r.upstream_us = info.upstream_duration_us;
  r.flags = info.response_flags;
  sluice_str_t v;
  auto get = [&](const char* name) -> std::string_view {
    return g_host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, {name, strlen(name)}, 0, &v)
               ? sv(v)
               : std::string_view();
  };
  r.method = get(":method");
  r.authority = get(":authority");
  r.path = get(":path");
  r.user_agent = get("user-agent");
  r.referer = get("referer");
  r.metadata.clear();
  sluice_str_t k, mv;
  for (size_t i = 0; g_host->sluice_host_metadata_at(s, i, &k, &mv); i++) {
    r.metadata.emplace_back(sv(k), sv(mv));
  }
  r.lookup_ctx = s;
  r.lookup = lookup;
  cfg.formatter->format(r, ws->buf);
  if (ws->buf.size() >= cfg.buffer_bytes) {
    cfg.writer->submit(ws->buf);
  }
}

const sluice_filter_descriptor_t kDescriptor = [] {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "access_log";
  d.sluice_on_config_new = configNew;
  d.sluice_on_config_destroy = configDestroy;
  d.sluice_on_worker_new = workerNew;
  d.sluice_on_worker_destroy = workerDestroy;
  d.sluice_on_stream_new = streamNew;
  d.sluice_on_stream_destroy = streamDestroy;
  d.sluice_on_stream_complete = onComplete;
  d.sluice_on_log_reopen = logReopen;
  return d;
}();

const sluice_filter_descriptor_t* const kDescriptors[] = {&kDescriptor};
const sluice_module_t kModule = {sizeof(sluice_module_t),
                                 SLUICE_ABI_VERSION_MAJOR,
                                 SLUICE_ABI_VERSION_MINOR,
                                 "access_log",
                                 kDescriptors,
                                 1};

} // namespace

} // namespace sluice::filters::access_log

extern "C" const sluice_module_t* sluice_builtin_access_log_init(const sluice_host_t* host,
                                                                 uint32_t, uint32_t) {
  sluice::filters::access_log::g_host = host;
  return &sluice::filters::access_log::kModule;
}
