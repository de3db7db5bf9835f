// core/server without sockets: the command line (`sluice version|validate|schema|...`), its exit
// codes and what it prints, run in-process.

#include "core/server/cli.h"
#include "test/support/capture_fd.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace sluice::server {
namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run cli(std::vector<std::string> args) {
  args.insert(args.begin(), "sluice");
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  testing::CaptureFd out(STDOUT_FILENO);
  testing::CaptureFd err(STDERR_FILENO);
  int code = runCli(static_cast<int>(args.size()), argv.data());
  std::string o = out.text();
  return {code, o, err.text()};
}

std::string writeConfig(const std::string& name, const std::string& text) {
  std::string path = "/tmp/sluice-cli-test-" + std::to_string(::getpid()) + "-" + name + ".json";
  std::ofstream(path) << text;
  return path;
}

std::string config(const std::string& listener_extra = "",
                   const std::string& address = "127.0.0.1:0") {
  return R"({"listeners": [{"name": "web", "address": ")" + address + "\"" + listener_extra +
         R"(, "filters": [{"type": "router", "config": {"virtual_hosts": [{"name": "all",
           "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "app"}]}]}}]}],
         "clusters": [{"name": "app", "endpoints": [{"address": "127.0.0.1:1"}]}]})";
}

TEST_CASE("CLI: version names the ABI and the built-in filters", "[server]") {
  Run r = cli({"version"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("sluice ", 0) == 0);
  CHECK(r.out.find("C ABI 1.") != std::string::npos);
  CHECK(r.out.find("router") != std::string::npos);
}

TEST_CASE("CLI: validate accepts a good config and exits 0", "[server]") {
  std::string path = writeConfig("good", config());
  Run r = cli({"validate", "-c", path});
  CHECK(r.code == 0);
  CHECK(r.out == "config ok: 1 listener(s), 1 cluster(s)\n");
  std::remove(path.c_str());
}

TEST_CASE("CLI: validate reports each error at its pointer and exits 1", "[server]") {
  SECTION("a listener on a host name") {
    std::string path = writeConfig("host", config("", "localhost:8080"));
    Run r = cli({"validate", "-c", path});
    CHECK(r.code == 1);
    CHECK(r.err.find("/listeners/0/address") != std::string::npos);
    std::remove(path.c_str());
  }
  SECTION("an unknown key") {
    std::string path = writeConfig("key", config(R"(, "limitz": {})"));
    Run r = cli({"validate", "-c", path});
    CHECK(r.code == 1);
    CHECK(r.err.find("/listeners/0/limitz") != std::string::npos);
    std::remove(path.c_str());
  }
  SECTION("a missing file") {
    Run r = cli({"validate", "-c", "/nonexistent/sluice.json"});
    CHECK(r.code == 1);
    CHECK_FALSE(r.err.empty());
  }
}

TEST_CASE("CLI: usage errors exit 1 with a message", "[server]") {
  Run r = cli({"validate"});
  CHECK(r.code == 1);
  CHECK(r.err.find("-c CONFIG.json is required") != std::string::npos);
  r = cli({"frobnicate"});
  CHECK(r.code == 1);
  CHECK(r.err.find("unknown command \"frobnicate\"") != std::string::npos);
  r = cli({"version", "--log-level", "loud"});
  CHECK(r.code == 1);
  CHECK(r.err.find("--log-level") != std::string::npos);
}

TEST_CASE("CLI: schema prints the compiled-in JSON schema", "[server]") {
  Run r = cli({"schema"});
  CHECK(r.code == 0);
  CHECK(r.out.find("\"$schema\"") != std::string::npos);
  CHECK(r.out.find("\"alpn\"") != std::string::npos);
}

} // namespace
} // namespace sluice::server
