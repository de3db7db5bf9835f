#pragma once

// cors: answers CORS preflights locally and adds CORS headers to actual responses. Written
// against the C ABI only.

#include "filters/cors/config.h"
#include "sluice/filter.h"

namespace sluice::filters::cors {

// The "cors" filter type.
const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::cors

extern "C" const sluice_module_t*
sluice_builtin_cors_init(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor);
