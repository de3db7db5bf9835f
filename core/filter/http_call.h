#pragma once

// sluice_host_http_call: a one-shot request to a cluster through its load balancer and pool,
// completed on the same worker with the whole response (bounded) or an error.

#include "core/filter/worker_context.h"
#include "sluice/filter.h"

#include <string_view>

namespace sluice::filter {

class Stream;

// Links a stream's pending calls into a list the stream heads (Stream::httpCalls()), so ending
// the stream cancels its own calls without looking at any other.
struct HttpCallLink {
  HttpCallLink* prev = nullptr;
  HttpCallLink* next = nullptr;
};

struct HttpCalls {
  static constexpr size_t kMaxResponseBytes = 4 * 1024 * 1024;
  static sluice_call_id_t start(WorkerContext& worker, Stream* stream, std::string_view cluster,
                                std::string_view method, std::string_view path,
                                const sluice_header_t* headers, size_t header_count,
                                std::string_view body, uint32_t timeout_ms,
                                sluice_http_callback_t cb, void* user_data);
  static void cancel(WorkerContext& worker, sluice_call_id_t id);
  // Cancels the calls `stream` made (O(its own calls)); their callbacks do not run.
  static void cancelForStream(WorkerContext& worker, Stream* stream);
};

} // namespace sluice::filter
