#pragma once

// router: picks a virtual host and the first matching route, answers redirects and direct
// responses itself, and otherwise hands the request to a cluster with sluice_host_route.
// Written against the C ABI only.

#include "filters/router/config.h"
#include "sluice/filter.h"

namespace sluice::filters::router {

// The "router" filter type.
const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::router

extern "C" const sluice_module_t*
sluice_builtin_router_init(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor);
