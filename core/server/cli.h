#pragma once

namespace sluice::server {

// `sluice run|validate|version|filters|bench-filter ...`; returns the process exit code.
int runCli(int argc, char** argv);

} // namespace sluice::server
