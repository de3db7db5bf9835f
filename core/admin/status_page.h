#pragma once

// The status page served at GET / on the admin port: one self-contained HTML document (inline
// style and script, nothing loaded from elsewhere) that polls GET /status, /clusters and /stats
// every 2 s with the admin key the operator entered (kept in the tab's sessionStorage).

#include <string_view>

namespace sluice::admin {

std::string_view statusPageHtml();

} // namespace sluice::admin
