#include "core/server/crash_report.h"

#include "core/common/logger.h"
#include "core/filter/stream.h"

#include <csignal>
#include <cstring>

#include <unistd.h>

namespace sluice::server {

namespace {

void put(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w <= 0) {
      return;
    }
    s += w;
    n -= static_cast<size_t>(w);
  }
}

const char* signalName(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGFPE:
    return "SIGFPE";
  case SIGILL:
    return "SIGILL";
  case SIGABRT:
    return "SIGABRT";
  default:
    return "a fatal signal";
  }
}

void onFatal(int sig) {
  // Only async-signal-safe calls from here on: write(2), signal(2), raise(3).
  const filter::FilterInstance* f = filter::runningFilter();
  Logger::writeQueuedForCrash(); // what the process logged just before comes first
  put("sluice: fatal ");
  put(signalName(sig));
  if (f != nullptr) {
    put(" in filter \"");
    put(f->name.c_str());
    put("\" (type ");
    put(f->type.c_str());
    put(", ");
    put(f->module ? f->module->path().c_str() : "built-in");
    put(")\n");
  } else {
    put(" outside any filter hook\n");
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

} // namespace

void installCrashReport() {
#if !defined(__SANITIZE_ADDRESS__)
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    struct sigaction sa {};
    sa.sa_handler = onFatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(sig, &sa, nullptr);
  }
#endif
}

} // namespace sluice::server
