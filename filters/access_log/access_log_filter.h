#pragma once

// access_log: one line per finished stream. The line is formatted on the worker, in
// sluice_on_stream_complete, into that worker's buffer; full buffers (and every flush_ms) go to
// the config's writer thread, which does the write(2) calls. Written against the C ABI only.

#include "filters/access_log/config.h"
#include "filters/access_log/formatter.h"
#include "filters/access_log/writer.h"
#include "sluice/filter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::filters::access_log {

// What the ABI's `void* config` points to: the parsed config, the writer thread and the metric
// ids. Shared read-only by every worker (the writer is internally synchronised).
class FilterConfig : public WriterObserver {
public:
  // Check phase: parses and validates `json` and checks that the log file can be opened, without
  // creating it. On failure reports every error through sluice_host_config_error and returns
  // null.
  static std::unique_ptr<FilterConfig> create(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                              std::string_view json);
  ~FilterConfig() override;

  const sluice_host_t& host() const { return *host_; }
  const Config& config() const { return config_; }
  // Start phase (sluice_on_config_start): opens the log file and starts the writer thread. False
  // (logged) if it cannot. The workers exist only once it succeeded.
  bool start();
  bool started() const { return writer_ != nullptr; }
  Writer& writer() { return *writer_; }

  // WriterObserver: metrics and log lines, from the writer thread (or a submitting worker).
  void onLinesWritten(uint64_t lines) override;
  void onLinesDropped(uint64_t lines) override;
  void onWriteError(std::string_view message) override;

  // Any thread: a message on sluice's log, prefixed with this filter's name.
  void log(sluice_log_level_t level, std::string_view message) const;

private:
  FilterConfig(const sluice_host_t* host, Config config, std::string name);

  const sluice_host_t* host_;
  const Config config_;
  const std::string name_;
  sluice_metric_id_t lines_written_metric_ = SLUICE_METRIC_INVALID;
  sluice_metric_id_t lines_dropped_metric_ = SLUICE_METRIC_INVALID;
  sluice_metric_id_t write_errors_metric_ = SLUICE_METRIC_INVALID;
  // Last member: destroyed first, so it drains while the config and metrics are still alive.
  std::unique_ptr<Writer> writer_;
};

// Per-worker state (sluice_on_worker_new): the append buffer, the flush timer, the sampling PRNG
// and a reusable Record. It is also every stream's filter object on this worker: streams need no
// state of their own, so nothing is allocated per request.
class WorkerState : public RecordSource {
public:
  WorkerState(FilterConfig& config, sluice_worker_t* worker);
  // Cancels the flush timer and hands what is left to the writer (nothing is lost at shutdown).
  ~WorkerState() override;

  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;

  void onStreamComplete(sluice_stream_t* stream);
  void onFlushTimer();

  // RecordSource over the stream being logged (only during onStreamComplete).
  bool header(HeaderMapKind map, std::string_view name, std::string_view& value) const override;
  bool metadata(std::string_view key, std::string_view& value) const override;

  const LogBuffer& buffer() const { return buffer_; }

private:
  bool passes(const sluice_stream_info_t& info);
  std::string_view requestHeader(std::string_view name) const;
  void handOver(bool final);
  void armTimer();
  double nextUniform();

  FilterConfig& config_;
  const sluice_host_t& host_;
  sluice_worker_t* const worker_;
  LogBuffer buffer_;
  Record record_;
  sluice_stream_t* stream_ = nullptr; // the stream being logged
  sluice_timer_id_t timer_ = 0;
  uint64_t rng_state_;
};

// The "access_log" filter type.
const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::access_log

extern "C" const sluice_module_t*
sluice_builtin_access_log_init(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor);
