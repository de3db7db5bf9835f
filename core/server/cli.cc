#include "core/server/cli.h"

#include "core/common/logger.h"
#include "core/config/config.h"
#include "core/event/dispatcher.h"
#include "core/event/ring.h"
#include "core/filter/builtin.h"
#include "core/filter/registry.h"
#include "core/filter/snapshot.h"
#include "core/server/bench_filter.h"
#include "core/server/crash_report.h"
#include "core/server/schema_text.h"
#include "core/server/server.h"
#include "sluice/version.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace sluice::server {

namespace {

void registerBuiltins() {
  static bool done = false;
  if (!done) {
    size_t n = 0;
    const filter::BuiltinModule* m = filter::builtinModules(&n);
    filter::Registry::global().addBuiltins(m, n);
    done = true;
  }
}

void usage(FILE* out) {
  fmt::print(out, "usage:\n"
                  "  sluice run -c CONFIG.json [--workers N] [--log-level LEVEL]\n"
                  "             [--io auto|io_uring|epoll]   (default: $SLUICE_IO, else auto)\n"
                  "  sluice -c CONFIG.json            (same as run)\n"
                  "  sluice validate -c CONFIG.json\n"
                  "  sluice version\n"
                  "  sluice filters\n"
                  "  sluice schema                    (the config's JSON Schema, draft 2020-12)\n"
                  "  sluice bench-filter --filter TYPE [--module lib.so] --config JSON|@file\n"
                  "                      [--requests corpus.jsonl] [--iterations N] [--batch N]\n"
                  "                      [--response-bytes N] [--json] [--progress|--no-progress]\n"
                  "                      (sluice bench-filter --help for details)\n");
}

struct Args {
  std::string command;
  std::string config;
  int workers = -1;
  std::string log_level;
  std::string io;
  std::string error;
};

bool parseInt(const char* s, int& out) {
  if (s == nullptr || *s == '\0') {
    return false;
  }
  long v = 0;
  for (const char* p = s; *p; p++) {
    if (*p < '0' || *p > '9') {
      return false;
    }
    v = v * 10 + (*p - '0');
    if (v > 1024) {
      return false;
    }
  }
  out = static_cast<int>(v);
  return true;
}

Args parseArgs(int argc, char** argv) {
  Args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    a.command = argv[i++];
  } else {
    a.command = "run";
  }
  for (; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        a.error = fmt::format("{} needs a value", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "-c" || arg == "--config") {
      const char* v = value("-c");
      if (v) {
        a.config = v;
      }
    } else if (arg.rfind("--config=", 0) == 0) {
      a.config = arg.substr(9);
    } else if (arg == "--workers") {
      const char* v = value("--workers");
      if (v && !parseInt(v, a.workers)) {
        a.error = fmt::format("--workers: expected an integer 0..1024, got \"{}\"", v);
      }
    } else if (arg == "--io") {
      const char* v = value("--io");
      if (v) {
        a.io = v;
        if (a.io.empty()) {
          a.error = "--io: expected auto|io_uring|epoll, got \"\"";
        }
      }
    } else if (arg == "--log-level") {
      const char* v = value("--log-level");
      if (v) {
        a.log_level = v;
      }
    } else if (arg == "-h" || arg == "--help") {
      a.command = "help";
    } else {
      a.error = fmt::format("unknown argument \"{}\"", arg);
    }
    if (!a.error.empty()) {
      break;
    }
  }
  return a;
}

// --io (or SLUICE_IO): how connections move bytes. io_uring asked for by name must be there;
// auto falls back to epoll (with a warning) where the kernel refuses it.
bool setIoBackend(std::string io) {
  if (io.empty()) {
    const char* env = std::getenv("SLUICE_IO");
    io = env != nullptr ? env : "auto";
  }
  if (io == "auto") {
    event::Dispatcher::setIoBackend(event::IoBackend::Auto);
  } else if (io == "epoll") {
    event::Dispatcher::setIoBackend(event::IoBackend::Epoll);
  } else if (io == "io_uring") {
    std::string why;
    if (event::Ring::open(why) == nullptr) {
      fmt::print(stderr, "sluice: --io io_uring: not available on this kernel ({})\n", why);
      return false;
    }
    event::Dispatcher::setIoBackend(event::IoBackend::IoUring);
  } else {
    fmt::print(stderr, "sluice: --io: expected auto|io_uring|epoll, got \"{}\"\n", io);
    return false;
  }
  if (io != "epoll") {
    // Whether io_uring waits take a min-wait depends on what a short kernel timer costs here;
    // measured now, at boot (~3 ms on a VM that traps the timer), not on a worker's first
    // connection.
    (void)event::Ring::shortTimerCostNs();
  }
  return true;
}

int validate(const std::string& path) {
  config::LoadResult load = config::loadConfigFile(path);
  if (!load.errors.empty()) {
    for (const auto& e : load.errors) {
      fmt::print(stderr, "config error: {}\n", e.toString());
    }
    return 1;
  }
  for (const auto& w : load.warnings) {
    fmt::print(stderr, "warning: {}\n", w);
  }
  std::vector<config::ConfigError> errors;
  for (size_t i = 0; i < load.config->listeners.size(); i++) {
    const auto& l = load.config->listeners[i];
    if (!l.address.is_ip) {
      errors.push_back({l.pointer + "/address",
                        "expected an IP address and port, got \"" + l.address.text + "\""});
    }
  }
  filter::BuildResult built =
      filter::buildSnapshot(load.config, 0, nullptr, filter::BuildMode::CheckOnly);
  for (auto& e : built.errors) {
    errors.push_back(std::move(e));
  }
  if (!errors.empty()) {
    for (const auto& e : errors) {
      fmt::print(stderr, "config error: {}\n", e.toString());
    }
    return 1;
  }
  fmt::print("config ok: {} listener(s), {} cluster(s)\n", load.config->listeners.size(),
             load.config->clusters.size());
  return 0;
}

} // namespace

int runCli(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "bench-filter") == 0) {
    registerBuiltins();
    Logger::setLevel(LogLevel::Warn);
    return runBenchFilter(argc - 2, argv + 2);
  }
  Args a = parseArgs(argc, argv);
  if (!a.error.empty()) {
    fmt::print(stderr, "sluice: {}\n", a.error);
    usage(stderr);
    return 1;
  }
  if (!a.log_level.empty()) {
    LogLevel l;
    if (!Logger::parseLevel(a.log_level, l)) {
      fmt::print(stderr,
                 "sluice: --log-level: expected trace|debug|info|warn|error|off, got \"{}\"\n",
                 a.log_level);
      return 1;
    }
    Logger::setLevel(l);
  }
  registerBuiltins();
  if (a.command == "help") {
    usage(stdout);
    return 0;
  }
  if (a.command == "version") {
    fmt::print("sluice {} (C ABI {}.{})\n", SLUICE_VERSION_STRING, SLUICE_ABI_VERSION_MAJOR,
               SLUICE_ABI_VERSION_MINOR);
    std::string names;
    for (const auto* t : filter::Registry::global().builtins()) {
      names += (names.empty() ? "" : " ") + t->type;
    }
    fmt::print("built-in filters: {}\n", names);
    return 0;
  }
  if (a.command == "schema") {
    fmt::print("{}", configSchemaText());
    return 0;
  }
  if (a.command == "filters") {
    for (const auto* t : filter::Registry::global().builtins()) {
      fmt::print("{}\t{}\n", t->type, t->origin);
    }
    return 0;
  }
  if (a.command == "validate" || a.command == "run") {
    if (a.config.empty()) {
      fmt::print(stderr, "sluice {}: -c CONFIG.json is required\n", a.command);
      return 1;
    }
    if (a.command == "validate") {
      return validate(a.config);
    }
    if (!setIoBackend(a.io)) {
      return 1;
    }
    installCrashReport();
    RunOptions opts;
    opts.config_path = a.config;
    opts.workers = a.workers;
    Logger::startWriter(); // from here on no thread blocks on stderr
    int rc = Server(opts).run();
    Logger::stopWriter();
    return rc;
  }
  fmt::print(stderr, "sluice: unknown command \"{}\"\n", a.command);
  usage(stderr);
  return 1;
}

} // namespace sluice::server
