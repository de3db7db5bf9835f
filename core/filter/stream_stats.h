#pragma once

// The SPEC §5 data-path metrics recorded when a stream ends. Series are defined when a
// snapshot is installed, so recording is an array index and a relaxed add.

#include "core/filter/snapshot.h"
#include "core/upstream/pool.h"

#include <cstdint>
#include <string_view>

namespace sluice::filter {
class WorkerContext;
}

namespace sluice::filter::stats {

// Defines the series for a snapshot's listeners and clusters (main thread, while building).
void defineSnapshotMetrics(Snapshot& snapshot);
void recordStream(WorkerContext& worker, size_t listener_index, const ListenerRuntime& listener,
                  uint32_t status, uint64_t duration_us, upstream::ClusterPool* pool,
                  bool upstream_answered);
void recordUpstreamError(WorkerContext& worker, upstream::ClusterPool* pool, std::string_view kind);
void connectionOpened(const ListenerRuntime& listener, int delta);
void setServerState(bool ready, bool draining);
void setGeneration(uint64_t generation);
void recordReload(bool success);
void recordUpstreamDuration(upstream::ClusterPool* pool, uint64_t us);
// A retry the budget allowed (true) or refused (false).
void recordRetry(upstream::ClusterPool* pool, bool allowed);
void recordFilterError(const FilterInstance& f);
// The monotonic clock stream and upstream timings are taken from, in microseconds.
uint64_t monotonicUs();

} // namespace sluice::filter::stats
