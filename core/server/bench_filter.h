#pragma once

namespace sluice::server {

// `sluice bench-filter ...` (arguments after the command word); returns the exit code.
int runBenchFilter(int argc, char** argv);

} // namespace sluice::server
