#include "filters/access_log/formatter.h"
#include "sluice/filter.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace sluice::filters::access_log;

namespace {
Record sample() {
  Record r;
  r.start_unix_us = 1764000000123456ull; // 2025-11-24T16:00:00.123Z
  r.request_id = "rid-1";
  r.client = "127.0.0.1:5000";
  r.client_ip = "127.0.0.1";
  r.method = "GET";
  r.authority = "example.com";
  r.path = "/a?b=c";
  r.protocol = "HTTP/1.1";
  r.user_agent = "ua \"quoted\" \x01 \xff end";
  r.status = 503;
  r.bytes_in = 10;
  r.bytes_out = 20;
  r.duration_us = 1500;
  r.upstream_us = 1200;
  r.flags = SLUICE_FLAG_UPSTREAM_TIMEOUT | SLUICE_FLAG_LOCAL_REPLY;
  r.metadata = {{"ai.agent", "GPTBot"}};
  return r;
}
} // namespace

TEST_CASE("AccessLog: JSON lines are valid JSON with every field", "[access_log]") {
  Formatter f(Format::Json);
  std::string out;
  f.format(sample(), out);
  REQUIRE(out.back() == '\n');
  auto j = nlohmann::json::parse(out);
  CHECK(j["time"] == "2025-11-24T16:00:00.123Z");
  CHECK(j["status"] == 503);
  CHECK(j["duration_ms"] == 1.5);
  CHECK(j["flags"] == nlohmann::json::array({"UT", "LR"}));
  CHECK(j["ai.agent"] == "GPTBot");
  std::string ua = j["user_agent"];
  CHECK(ua.find("\"quoted\"") != std::string::npos);
  CHECK(ua.find("\xef\xbf\xbd") != std::string::npos); // the invalid byte became U+FFFD
}

TEST_CASE("AccessLog: combined format and control characters", "[access_log]") {
  Formatter f(Format::Combined);
  std::string out;
  f.format(sample(), out);
  CHECK(out == "127.0.0.1 - - [24/Nov/2025:16:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 503 20 \"-\" "
               "\"ua \"quoted\" ? \xff end\"\n");
}

TEST_CASE("AccessLog: templates parse once and reject unknown commands", "[access_log]") {
  std::vector<Segment> segs;
  std::string err;
  REQUIRE(parseTemplate("%METHOD% %PATH% %STATUS% %FLAGS% %METADATA(ai.agent)% %METADATA(x)% 100%%",
                        segs, err));
  Formatter f(Format::Template, segs);
  std::string out;
  f.format(sample(), out);
  CHECK(out == "GET /a?b=c 503 UT,LR GPTBot - 100%\n");
  segs.clear();
  CHECK_FALSE(parseTemplate("%NOPE%", segs, err));
  CHECK(err.find("NOPE") != std::string::npos);
  CHECK_FALSE(parseTemplate("%STATUS", segs, err));
}
