#pragma once

namespace sluice::server {

// On a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), writes one line to stderr naming
// the filter whose hook the crashing thread was running (its name, type and module file), then
// lets the default action end the process. Not installed under AddressSanitizer, which reports
// crashes itself.
void installCrashReport();

} // namespace sluice::server
