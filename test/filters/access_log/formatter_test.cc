#include "filters/access_log/formatter.h"
#include "sluice/filter.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace sluice::filters::access_log {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

class MapSource : public RecordSource {
public:
  std::map<std::string, std::string> request, response, meta;

  bool header(HeaderMapKind map, std::string_view name, std::string_view& value) const override {
    const auto& m = map == HeaderMapKind::Request ? request : response;
    auto it = m.find(std::string(name));
    if (it == m.end()) {
      return false;
    }
    value = it->second;
    return true;
  }
  bool metadata(std::string_view key, std::string_view& value) const override {
    auto it = meta.find(std::string(key));
    if (it == meta.end()) {
      return false;
    }
    value = it->second;
    return true;
  }
};

Record sampleRecord() {
  Record r;
  r.start_unix_us = 1764000000123456ull; // 2025-11-24T16:00:00.123456Z
  r.duration_us = 1500;
  r.upstream_duration_us = 1234;
  r.bytes_in = 10;
  r.bytes_out = 20;
  r.status = 503;
  r.flags = SLUICE_FLAG_UPSTREAM_TIMEOUT | SLUICE_FLAG_LOCAL_REPLY;
  r.request_id = "rid-1";
  r.client_address = "127.0.0.1:5000";
  r.client_ip = "127.0.0.1";
  r.protocol = "HTTP/1.1";
  r.method = "GET";
  r.authority = "example.com";
  r.path = "/a?b=c";
  r.user_agent = "curl/8.0";
  r.referer = "https://ref.example/";
  r.upstream_cluster = "api";
  r.upstream_endpoint = "10.0.0.7:8080";
  r.metadata = {{"ai.agent", "GPTBot"}, {"ai.provider", "OpenAI"}};
  return r;
}

std::string line(const Formatter& f, const Record& r) {
  std::string out;
  f.format(r, out);
  return out;
}

std::string jsonString(std::string_view v) {
  std::string out;
  appendJsonString(out, v);
  return out;
}

std::string logText(std::string_view v) {
  std::string out;
  appendLogText(out, v);
  return out;
}

TEST_CASE("AccessLog: a JSON line carries the SPEC fields in order, then metadata",
          "[access_log]") {
  const std::string out = line(Formatter::json(), sampleRecord());
  REQUIRE(out.back() == '\n');
  REQUIRE(out.find('\n') == out.size() - 1);
  const OrderedJson j = OrderedJson::parse(out);
  std::vector<std::string> keys;
  for (const auto& item : j.items()) {
    keys.push_back(item.key());
  }
  CHECK(keys == std::vector<std::string>{"time", "request_id", "client", "method", "authority",
                                         "path", "protocol", "status", "bytes_in", "bytes_out",
                                         "duration_ms", "upstream_cluster", "upstream_endpoint",
                                         "upstream_ms", "flags", "user_agent", "ai.agent",
                                         "ai.provider"});
  CHECK(j["time"] == "2025-11-24T16:00:00.123Z");
  CHECK(j["request_id"] == "rid-1");
  CHECK(j["client"] == "127.0.0.1:5000");
  CHECK(j["method"] == "GET");
  CHECK(j["authority"] == "example.com");
  CHECK(j["path"] == "/a?b=c");
  CHECK(j["protocol"] == "HTTP/1.1");
  CHECK(j["status"] == 503);
  CHECK(j["bytes_in"] == 10);
  CHECK(j["bytes_out"] == 20);
  CHECK(j["duration_ms"] == 1.5);
  CHECK(j["upstream_cluster"] == "api");
  CHECK(j["upstream_endpoint"] == "10.0.0.7:8080");
  CHECK(j["upstream_ms"] == 1.234);
  CHECK(j["flags"] == OrderedJson::array({"UT", "LR"}));
  CHECK(j["user_agent"] == "curl/8.0");
  CHECK(j["ai.agent"] == "GPTBot");
  CHECK(j["ai.provider"] == "OpenAI");
}

TEST_CASE("AccessLog: the exact JSON text of a line", "[access_log]") {
  Record r = sampleRecord();
  r.metadata = {{"k", "v"}};
  CHECK(line(Formatter::json(), r) ==
        R"({"time":"2025-11-24T16:00:00.123Z","request_id":"rid-1","client":"127.0.0.1:5000",)"
        R"("method":"GET","authority":"example.com","path":"/a?b=c","protocol":"HTTP/1.1",)"
        R"("status":503,"bytes_in":10,"bytes_out":20,"duration_ms":1.500,)"
        R"("upstream_cluster":"api","upstream_endpoint":"10.0.0.7:8080","upstream_ms":1.234,)"
        R"("flags":["UT","LR"],"user_agent":"curl/8.0","k":"v"})"
        "\n");
}

TEST_CASE("AccessLog: absent values are empty JSON strings and zero numbers", "[access_log]") {
  const Json j = Json::parse(line(Formatter::json(), Record{}));
  CHECK(j["time"] == "1970-01-01T00:00:00.000Z");
  CHECK(j["upstream_cluster"] == "");
  CHECK(j["status"] == 0);
  CHECK(j["duration_ms"] == 0);
  CHECK(j["flags"] == Json::array());
  CHECK(j.size() == 16);
}

TEST_CASE("AccessLog: every flag bit prints its code, in table order", "[access_log]") {
  Record r = sampleRecord();
  r.flags = 0x1ff;
  const Json j = Json::parse(line(Formatter::json(), r));
  CHECK(j["flags"] == Json::array({"UT", "UF", "UO", "UR", "NR", "RL", "DC", "LR", "UH"}));

  const auto [bit, code] = GENERATE(table<uint32_t, std::string>({
      {SLUICE_FLAG_UPSTREAM_TIMEOUT, "UT"},
      {SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE, "UF"},
      {SLUICE_FLAG_UPSTREAM_OVERFLOW, "UO"},
      {SLUICE_FLAG_UPSTREAM_RESET, "UR"},
      {SLUICE_FLAG_NO_ROUTE, "NR"},
      {SLUICE_FLAG_RATE_LIMITED, "RL"},
      {SLUICE_FLAG_DOWNSTREAM_DISCONNECT, "DC"},
      {SLUICE_FLAG_LOCAL_REPLY, "LR"},
      {SLUICE_FLAG_NO_HEALTHY_UPSTREAM, "UH"},
  }));
  r.flags = bit;
  CHECK(Json::parse(line(Formatter::json(), r))["flags"] == Json::array({code}));
  std::string text;
  appendFlagCodes(text, bit | SLUICE_FLAG_UPSTREAM_TIMEOUT, ',');
  CHECK(text == (bit == SLUICE_FLAG_UPSTREAM_TIMEOUT ? std::string("UT") : "UT," + code));
}

TEST_CASE("AccessLog: JSON strings escape quotes, backslashes and control characters",
          "[access_log]") {
  CHECK(jsonString("plain") == "\"plain\"");
  CHECK(jsonString("a\"b\\c") == R"("a\"b\\c")");
  CHECK(jsonString("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(jsonString(std::string_view("\x00\x01\x1f\x7f", 4)) == R"("\u0000\u0001\u001f\u007f")");
  CHECK(jsonString("") == "\"\"");

  const std::string value =
      GENERATE(as<std::string>{}, "x\"y", "back\\slash", "line\nbreak", std::string("nul\0byte", 8),
               "tab\there", "\x1b[31mred", "caf\xc3\xa9", "\xe2\x82\xac euro",
               "\xf0\x9f\x98\x80 emoji", "</script>", "\xe2\x80\xa8 line separator");
  const std::string doc = "{\"v\":" + jsonString(value) + "}";
  CHECK(doc.find('\n') == std::string::npos);
  CHECK(Json::parse(doc)["v"] == value); // well-formed input round-trips exactly
}

TEST_CASE("AccessLog: the word-at-a-time JSON escaper agrees with a per-byte escape at every "
          "position",
          "[access_log]") {
  // Clean 8-byte words are copied whole; a byte that needs escaping anywhere in a word must still
  // be found. Every byte value, at every offset of ASCII strings of 1 to 19 bytes (the short
  // values take their own paths: 1-3, 4-7 and 8+ bytes), must come out exactly as the per-byte
  // rule says: one escape (or a copy, for the safe bytes) and the rest verbatim.
  const std::string base = std::string("abcdefghijklmnopqrs").substr(0, GENERATE(range(1, 20)));
  for (int b = 0; b < 256; b++) {
    const auto c = static_cast<unsigned char>(b);
    std::string expected_escape;
    switch (c) {
    case '"':
      expected_escape = "\\\"";
      break;
    case '\\':
      expected_escape = "\\\\";
      break;
    case '\n':
      expected_escape = "\\n";
      break;
    case '\r':
      expected_escape = "\\r";
      break;
    case '\t':
      expected_escape = "\\t";
      break;
    case '\b':
      expected_escape = "\\b";
      break;
    case '\f':
      expected_escape = "\\f";
      break;
    default:
      if (c >= 0x80) {
        expected_escape = "\\ufffd"; // a lone byte >= 0x80 is never well-formed UTF-8
      } else if (c < 0x20 || c == 0x7f) {
        static constexpr char kHexDigits[] = "0123456789abcdef";
        expected_escape = std::string("\\u00") + kHexDigits[c >> 4] + kHexDigits[c & 0xf];
      } else {
        expected_escape = std::string(1, static_cast<char>(c));
      }
    }
    for (size_t at = 0; at < base.size(); at++) {
      std::string value = base;
      value[at] = static_cast<char>(c);
      const std::string expected =
          "\"" + base.substr(0, at) + expected_escape + base.substr(at + 1) + "\"";
      INFO("byte " << b << " at " << at << " of " << base.size());
      REQUIRE(jsonString(value) == expected);
    }
  }
}

TEST_CASE("AccessLog: the JSON escaper never writes past the room it asks for", "[access_log]") {
  // Worst case: each control byte becomes \u0001, six bytes out per byte in.
  const std::string controls(64, '\x01');
  CHECK(jsonString(controls).size() == 2 + 6 * controls.size());
  // Short values take the padded-word path; whatever the length, nothing lands past the room.
  for (size_t n = 0; n <= 24; n++) {
    for (const char fill : {'a', '"', '\x01'}) {
      const std::string value(n, fill);
      std::string out(jsonStringRoom(n) + 8, '#');
      char* end = putJsonString(out.data(), value);
      INFO("length " << n << " fill " << static_cast<int>(fill));
      CHECK(static_cast<size_t>(end - out.data()) <= jsonStringRoom(n));
      CHECK(out.substr(jsonStringRoom(n)) == "########");
      CHECK(std::string(out.data(), end) == jsonString(value));
    }
  }
}

TEST_CASE("AccessLog: bytes that are not well-formed UTF-8 become U+FFFD", "[access_log]") {
  const auto [input, expected] = GENERATE(table<std::string, std::string>({
      {"a\xff"
       "b",
       "a\xef\xbf\xbd"
       "b"},
      {"\x80", "\xef\xbf\xbd"},                                                 // lone continuation
      {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                                 // overlong '/'
      {"\xc1\xbf", "\xef\xbf\xbd\xef\xbf\xbd"},                                 // overlong
      {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 // overlong 3-byte
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, // > U+10FFFF
      {"\xf5\x80", "\xef\xbf\xbd\xef\xbf\xbd"},
      {"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},   // truncated at the end
      {"\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx"}, // truncated mid-string
      {"ok\xc3\xa9\xff\xc3\xa9", "ok\xc3\xa9\xef\xbf\xbd\xc3\xa9"},
  }));
  const std::string doc = "[" + jsonString(input) + "]";
  Json parsed;
  REQUIRE_NOTHROW(parsed = Json::parse(doc));
  CHECK(parsed[0] == expected);
}

TEST_CASE("AccessLog: hostile request values still give one valid JSON line", "[access_log]") {
  Record r = sampleRecord();
  const std::string path = "/x\"}\n{\"forged\":true\xff";
  const std::string ua = std::string("ua\0\r\n\\", 6);
  const std::string key = "k\"ey\n";
  const std::string value = "v\xc0";
  r.path = path;
  r.user_agent = ua;
  r.metadata = {{key, value}};
  const std::string out = line(Formatter::json(), r);
  REQUIRE(out.find('\n') == out.size() - 1);
  const Json j = Json::parse(out);
  CHECK(j["path"] == "/x\"}\n{\"forged\":true\xef\xbf\xbd");
  CHECK(j["user_agent"] == ua);
  CHECK(j[key] == "v\xef\xbf\xbd");
  CHECK_FALSE(j.contains("forged"));
}

TEST_CASE("AccessLog: metadata keys that collide with fixed fields are prefixed", "[access_log]") {
  Record r = sampleRecord();
  r.metadata = {{"status", "spoofed"}, {"flags", "x"}, {"ai.agent", "ClaudeBot"}};
  const std::string out = line(Formatter::json(), r);
  const OrderedJson j = OrderedJson::parse(out);
  CHECK(j["status"] == 503);
  CHECK(j["metadata.status"] == "spoofed");
  CHECK(j["metadata.flags"] == "x");
  CHECK(j["ai.agent"] == "ClaudeBot");
  CHECK(out.find("\"status\":", out.find("\"status\":") + 1) == std::string::npos);
}

TEST_CASE("AccessLog: times are UTC, RFC 3339 with milliseconds", "[access_log]") {
  const auto [us, rfc3339, common] = GENERATE(table<uint64_t, std::string, std::string>({
      {0, "1970-01-01T00:00:00.000Z", "01/Jan/1970:00:00:00 +0000"},
      {1764000000123456ull, "2025-11-24T16:00:00.123Z", "24/Nov/2025:16:00:00 +0000"},
      {1709251199999000ull, "2024-02-29T23:59:59.999Z", "29/Feb/2024:23:59:59 +0000"},
      {951868800000000ull, "2000-03-01T00:00:00.000Z", "01/Mar/2000:00:00:00 +0000"},
      {253402300799999999ull, "9999-12-31T23:59:59.999Z", "31/Dec/9999:23:59:59 +0000"},
  }));
  std::string a;
  appendRfc3339Millis(a, us);
  CHECK(a == rfc3339);
  std::string b;
  appendCommonLogTime(b, us);
  CHECK(b == common);
}

TEST_CASE("AccessLog: times within one second reuse its text, and a new second replaces it",
          "[access_log]") {
  const auto rfc = [](uint64_t us) {
    std::string out;
    appendRfc3339Millis(out, us);
    return out;
  };
  CHECK(rfc(1764000000123456ull) == "2025-11-24T16:00:00.123Z");
  CHECK(rfc(1764000000999999ull) == "2025-11-24T16:00:00.999Z");
  CHECK(rfc(1764000000000001ull) == "2025-11-24T16:00:00.000Z");
  CHECK(rfc(1764000001004000ull) == "2025-11-24T16:00:01.004Z");
  CHECK(rfc(1764000000123456ull) == "2025-11-24T16:00:00.123Z");
  CHECK(rfc(253402300799999999ull) == "9999-12-31T23:59:59.999Z");
  CHECK(rfc(253402300799000000ull) == "9999-12-31T23:59:59.000Z");
}

TEST_CASE("AccessLog: durations print as milliseconds with three decimals", "[access_log]") {
  const auto [us, text] = GENERATE(table<uint64_t, std::string>(
      {{0, "0.000"}, {1, "0.001"}, {999, "0.999"}, {1500, "1.500"}, {123456789, "123456.789"}}));
  std::string out;
  appendMillis(out, us);
  CHECK(out == text);
}

TEST_CASE("AccessLog: combined is the Apache combined log format", "[access_log]") {
  CHECK(line(Formatter::combined(), sampleRecord()) ==
        "127.0.0.1 - - [24/Nov/2025:16:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 503 20 "
        "\"https://ref.example/\" \"curl/8.0\"\n");

  Record r = sampleRecord();
  r.bytes_out = 0;
  r.referer = {};
  r.user_agent = {};
  r.client_ip = {};
  CHECK(line(Formatter::combined(), r) ==
        "127.0.0.1:5000 - - [24/Nov/2025:16:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 503 - \"-\" "
        "\"-\"\n");
}

TEST_CASE("AccessLog: text formats escape like Apache so a value cannot forge a line",
          "[access_log]") {
  CHECK(logText("") == "-");
  CHECK(logText("plain text/1.0") == "plain text/1.0");
  CHECK(logText("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(logText("a\\b") == "a\\\\b");
  CHECK(logText("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(logText(std::string_view("\x00\x1b\x7f\xff", 4)) == "\\x00\\x1b\\x7f\\xff");
  CHECK(logText("caf\xc3\xa9") == "caf\\xc3\\xa9");

  Record r = sampleRecord();
  r.user_agent = "evil\" \"x\n127.0.0.1 - - [forged]";
  const std::string out = line(Formatter::combined(), r);
  CHECK(out.find('\n') == out.size() - 1);
  CHECK(out.find("\"evil\\\" \\\"x\\n127.0.0.1 - - [forged]\"\n") != std::string::npos);
}

TEST_CASE("AccessLog: a template prints every command", "[access_log]") {
  std::string error;
  auto segments = parseTemplate(
      "%REQ(:method)% %REQ(User-Agent)% %RESP(x-upstream)% %STATUS% %DURATION% "
      "%UPSTREAM_DURATION% %BYTES_IN% %BYTES_OUT% %CLIENT% %REQUEST_ID% %FLAGS% "
      "%UPSTREAM_CLUSTER% %UPSTREAM_ENDPOINT% %METADATA(ai.agent)% %START_TIME% %PROTOCOL% "
      "%METHOD% %PATH% %AUTHORITY% 100%%",
      error);
  REQUIRE(segments);
  MapSource source;
  source.request = {{":method", "GET"}, {"user-agent", "curl/8.0"}};
  source.response = {{"x-upstream", "api-1"}};
  source.meta = {{"ai.agent", "GPTBot"}};
  Record r = sampleRecord();
  r.source = &source;
  CHECK(line(Formatter::fromTemplate(*segments), r) ==
        "GET curl/8.0 api-1 503 1.500 1.234 10 20 127.0.0.1:5000 rid-1 UT,LR api "
        "10.0.0.7:8080 GPTBot 2025-11-24T16:00:00.123Z HTTP/1.1 GET /a?b=c example.com 100%\n");
}

TEST_CASE("AccessLog: a local reply's details are a JSON field and a template command",
          "[access_log]") {
  Record r = sampleRecord();
  r.metadata.clear();
  r.response_details = "ip_denied \"x\"";
  const Json j = Json::parse(line(Formatter::json(), r));
  CHECK(j["response_details"] == "ip_denied \"x\"");
  // Only present when a filter gave details: other lines keep the SPEC's field set.
  r.response_details = {};
  CHECK_FALSE(Json::parse(line(Formatter::json(), r)).contains("response_details"));
  // A metadata key of that name does not collide with the field.
  r.response_details = "d";
  r.metadata = {{"response_details", "m"}};
  const Json k = Json::parse(line(Formatter::json(), r));
  CHECK(k["response_details"] == "d");
  CHECK(k["metadata.response_details"] == "m");
  std::string error;
  auto segments = parseTemplate("%STATUS% [%RESPONSE_DETAILS%]", error);
  REQUIRE(segments);
  CHECK(line(Formatter::fromTemplate(*segments), r) == "503 [d]\n");
  r.response_details = {};
  CHECK(line(Formatter::fromTemplate(*segments), r) == "503 [-]\n");
}

TEST_CASE("AccessLog: template values that are missing print a dash", "[access_log]") {
  std::string error;
  auto segments = parseTemplate(
      "[%REQ(x-missing)%] [%RESP(x-missing)%] [%METADATA(none)%] [%FLAGS%] [%UPSTREAM_CLUSTER%]",
      error);
  REQUIRE(segments);
  MapSource source;
  Record r = sampleRecord();
  r.flags = 0;
  r.upstream_cluster = {};
  r.source = &source;
  CHECK(line(Formatter::fromTemplate(*segments), r) == "[-] [-] [-] [-] [-]\n");
  r.source = nullptr;
  CHECK(line(Formatter::fromTemplate(*segments), r) == "[-] [-] [-] [-] [-]\n");
}

TEST_CASE("AccessLog: templates are parsed once into segments", "[access_log]") {
  std::string error;
  auto segments = parseTemplate("a %STATUS% %REQ(X-Forwarded-For)%%%b", error);
  REQUIRE(segments);
  CHECK(*segments == std::vector<Segment>{{Segment::Kind::Literal, "a "},
                                          {Segment::Kind::Status, ""},
                                          {Segment::Kind::Literal, " "},
                                          {Segment::Kind::RequestHeader, "x-forwarded-for"},
                                          {Segment::Kind::Literal, "%b"}});
  REQUIRE(parseTemplate("", error));
  CHECK(parseTemplate("", error)->empty());
  // A tab is the one control character allowed (tab-separated logs).
  REQUIRE(parseTemplate("%STATUS%\t%PATH%", error));
}

TEST_CASE("AccessLog: bad templates are rejected with a reason", "[access_log]") {
  const auto [text, reason] = GENERATE(table<std::string, std::string>({
      {"%NOPE%", "unknown command %NOPE%"},
      {"%status%", "unknown command %status%"},
      {"%STATUS", "unterminated '%' at offset 0"},
      {"ok %DURATION% 50%", "unterminated '%' at offset 16"},
      {"%REQ%", "%REQ% needs an argument"},
      {"%REQ()%", "%REQ% needs an argument"},
      {"%RESP(x-a%", "%RESP% needs an argument"},
      {"%METADATA%", "%METADATA% needs an argument"},
      {"%REQ(bad name)%", "is not a header name"},
      {"%REQ(a)b)%", "is not a header name"},
      {"%STATUS(x)%", "%STATUS% takes no argument"},
      {"%STATUS%\n%PATH%", "control character 0x0a (a newline) at offset 8"},
      {"a\rb", "control character 0x0d (a carriage return) at offset 1"},
      {std::string("a\0b", 3), "control character 0x00 at offset 1"},
      {"%METADATA(a\x1b)%", "control character 0x1b at offset 11"},
      {"x\x7f", "control character 0x7f at offset 1"},
  }));
  std::string error;
  CHECK_FALSE(parseTemplate(text, error));
  CHECK_THAT(error, Catch::Contains(reason));
}

TEST_CASE("AccessLog: formatting appends to the caller's buffer", "[access_log]") {
  std::string out = "previous\n";
  Formatter::combined().format(sampleRecord(), out);
  Formatter::json().format(sampleRecord(), out);
  CHECK(out.rfind("previous\n127.0.0.1 - - [", 0) == 0);
  CHECK(std::count(out.begin(), out.end(), '\n') == 3);
}

} // namespace
} // namespace sluice::filters::access_log
