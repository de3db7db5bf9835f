#include "core/http/codec.h"

#include <catch2/catch.hpp>
#include <string>

using namespace sluice;

namespace {

struct Collector : http::BodySink {
  std::string body;
  void onBodyData(std::string_view d) override { body.append(d); }
};

struct Parsed {
  http::ParseEvent last;
  bool head = false;
  bool complete = false;
  http::ParseError error = http::ParseError::None;
};

// Feeds `input` in pieces of `step` bytes, stopping at the first message end or error.
Parsed feed(http::Parser& p, network::Buffer& in, network::Buffer& head, std::string_view input,
            size_t step) {
  Parsed r{http::ParseEvent::NeedMore};
  size_t pos = 0;
  while (pos < input.size() || !in.empty()) {
    if (pos < input.size()) {
      size_t n = std::min(step, input.size() - pos);
      in.append(input.substr(pos, n));
      pos += n;
    }
    while (!in.empty()) {
      bool ready = false;
      r.last = http::parseStep(p, in, head, &ready);
      r.head = r.head || ready;
      if (r.last == http::ParseEvent::Error) {
        r.error = p.error();
        return r;
      }
      if (r.last == http::ParseEvent::HeadComplete) {
        p.resume();
        continue;
      }
      if (r.last == http::ParseEvent::MessageComplete) {
        r.complete = true;
        return r;
      }
      break;
    }
  }
  return r;
}

} // namespace

TEST_CASE("Codec: parses a request head into views, in any split", "[http]") {
  auto step = GENERATE(1u, 3u, 7u, 1000u);
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  Collector c;
  p.setBodySink(&c);
  network::Buffer in, head;
  auto r = feed(p, in, head,
                "POST /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Two: a  \r\n"
                "Content-Length: 5\r\n\r\nhello",
                step);
  REQUIRE(r.complete);
  REQUIRE(r.head);
  auto& h = p.head();
  CHECK(h.method == "POST");
  CHECK(h.target == "/a/b?x=1");
  CHECK(h.headers.get("host") == "example.com");
  CHECK(h.headers.get("X-TWO") == "a");
  CHECK(h.has_content_length);
  CHECK(h.content_length == 5);
  CHECK(c.body == "hello");
}

TEST_CASE("Codec: chunked body with trailers", "[http]") {
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  Collector c;
  p.setBodySink(&c);
  network::Buffer in, head;
  auto r = feed(p, in, head,
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
                5);
  REQUIRE(r.complete);
  CHECK(p.head().chunked);
  CHECK(c.body == "abcde");
  CHECK(p.head().trailers.get("x-trailer") == "t");
}

TEST_CASE("Codec: rejects smuggling and malformed heads with 400", "[http]") {
  std::string bad = GENERATE(
      std::string(
          "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nHost: h\r\nX-Space : a\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nHost: h\r\nX-Bad\x01: a\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nHost: h\r\nX-CR: a\rb\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), std::string("GARBAGE\r\n\r\n"));
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  auto r = feed(p, in, head, bad, 1000);
  INFO(bad);
  CHECK(r.last == http::ParseEvent::Error);
  CHECK(r.error == http::ParseError::BadRequest);
}

TEST_CASE("Codec: rejects what a strict origin could read another way, in any split", "[http]") {
  auto step = GENERATE(1u, 4u, 1000u);
  std::string bad = GENERATE(
      std::string("GET / HTTP/1.1\nHost: h\r\n\r\n"),                        // bare LF
      std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\nx"), // bare LF at end
      std::string("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),                     // double space
      std::string("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"),                     // trailing space
      std::string("GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
      std::string("GET / HTTP/0.9\r\nHost: h\r\n\r\n"),
      std::string("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), // whitespace before the first field
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n"),
      std::string("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"),
      std::string("GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhelloXX0\r\n\r\n")); // chunk data not followed by CRLF
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  auto r = feed(p, in, head, bad, step);
  INFO(bad);
  CHECK(r.last == http::ParseEvent::Error);
  CHECK(r.error == http::ParseError::BadRequest);
}

TEST_CASE("Codec: accepts valid framing variants", "[http]") {
  std::string ok = GENERATE(
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
      std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked \r\n\r\n0\r\n\r\n"),
      std::string("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
      std::string("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), std::string("GET / HTTP/1.0\r\n\r\n"));
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  auto r = feed(p, in, head, ok, 3);
  INFO(ok);
  CHECK(r.error == http::ParseError::None);
  CHECK(r.head);
}

TEST_CASE("Codec: trailers over the head limit are 431", "[http]") {
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 1024);
  network::Buffer in, head;
  std::string req = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (int i = 0; i < 200; i++) {
    req += "X-T: 1\r\n";
  }
  req += "\r\n";
  auto r = feed(p, in, head, req, 100);
  CHECK(r.last == http::ParseEvent::Error);
  CHECK(r.error == http::ParseError::HeadersTooLarge);
}

TEST_CASE("Codec: a head over the limit is 431", "[http]") {
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 1024);
  network::Buffer in, head;
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  auto r = feed(p, in, head, req, 100);
  CHECK(r.last == http::ParseEvent::Error);
  CHECK(r.error == http::ParseError::HeadersTooLarge);
}

TEST_CASE("Codec: pipelined requests pause after each message", "[http]") {
  http::Arena arena;
  http::Parser p(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  in.append("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  bool ready = false;
  CHECK(http::parseStep(p, in, head, &ready) == http::ParseEvent::HeadComplete);
  CHECK(ready);
  CHECK(p.head().target == "/1");
  p.resume();
  CHECK(http::parseStep(p, in, head, &ready) == http::ParseEvent::MessageComplete);
  p.resume();
  CHECK(http::parseStep(p, in, head, &ready) == http::ParseEvent::HeadComplete);
  CHECK(ready);
  CHECK(p.head().target == "/2");
}

TEST_CASE("Codec: response to HEAD has no body", "[http]") {
  http::Arena arena;
  http::Parser p(http::MessageType::Response, arena, 0);
  p.setExpectNoBody(true);
  network::Buffer in, head;
  auto r = feed(p, in, head, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1000);
  CHECK(r.complete);
  CHECK(r.head);
  CHECK(p.head().status == 200);
}

TEST_CASE("Codec: header map set/add/remove are case-insensitive", "[http]") {
  http::Arena arena;
  http::HeaderMap m(arena);
  m.addView("Accept", "a");
  m.add("X-A", "1");
  m.add("x-a", "2");
  CHECK(m.count("X-A") == 2);
  m.set("X-a", "3");
  CHECK(m.count("x-a") == 1);
  CHECK(m.get("x-a") == "3");
  CHECK(m.remove("ACCEPT") == 1);
  CHECK(m.size() == 1);
  CHECK(http::headerListContains("close, X-Foo ,bar", "x-foo"));
  CHECK_FALSE(http::headerListContains("close, X-Foo", "foo"));
}

TEST_CASE("iequalsBytes: the per-byte ASCII case fold, at every length and position", "[http]") {
  const auto lowerRef = [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
  };
  // Equal but for case at every position, inside buffers whose bytes around the span differ.
  const std::string upper = "X-REQUEST-ID:@[`{ZAZ-AZ09";
  const std::string mixed = "x-Request-iD:@[`{zaZ-aZ09";
  size_t wrong = 0;
  size_t checked = 0;
  for (size_t n = 0; n <= 25; n++) {
    std::string a = "<" + upper.substr(0, n) + ">";
    std::string b = "(" + mixed.substr(0, n) + ")";
    CHECK(http::iequalsBytes(a.data() + 1, b.data() + 1, n));
    for (size_t pos = 0; pos < n; pos++) {
      const char keep_a = a[pos + 1];
      const char keep_b = b[pos + 1];
      for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
          a[pos + 1] = static_cast<char>(x);
          b[pos + 1] = static_cast<char>(y);
          const bool want =
              lowerRef(static_cast<unsigned char>(x)) == lowerRef(static_cast<unsigned char>(y));
          wrong += http::iequalsBytes(a.data() + 1, b.data() + 1, n) == want ? 0 : 1;
          // The inline first-byte test in front of it.
          wrong += http::iequals({a.data() + 1, n}, {b.data() + 1, n}) == want ? 0 : 1;
          checked++;
        }
      }
      a[pos + 1] = keep_a;
      b[pos + 1] = keep_b;
    }
  }
  CHECK(checked == 325 * 65536); // every position of lengths 1..25
  CHECK(wrong == 0);
  // The pairs one bit (0x20) apart that are not letters, and high bytes.
  CHECK_FALSE(http::iequals("a@", "a`"));
  CHECK_FALSE(http::iequals("[", "{"));
  CHECK_FALSE(http::iequals("abcdefgh]", "abcdefgh}"));
  CHECK_FALSE(http::iequals("x-\xc1", "x-\xe1"));
  CHECK_FALSE(http::iequals("0123456789abcdef^", "0123456789abcdef~"));
  CHECK(http::iequals("Content-Type", "content-type"));
  CHECK(http::iequals("X-FORWARDED-PROTO", "x-forwarded-proto"));
  CHECK_FALSE(http::iequals("x-forwarded-proto", "x-forwarded-prot0"));
  CHECK(http::iequals("", ""));
}

TEST_CASE("reasonPhrase: every IANA-registered status has its phrase", "[http]") {
  CHECK(http::reasonPhrase(451) == "Unavailable For Legal Reasons");
  CHECK(http::reasonPhrase(418) == "Unknown"); // unassigned in the registry
  CHECK(http::reasonPhrase(103) == "Early Hints");
  CHECK(http::reasonPhrase(422) == "Unprocessable Content");
  CHECK(http::reasonPhrase(511) == "Network Authentication Required");
  CHECK(http::reasonPhrase(299) == "Unknown");
  size_t registered = 0;
  for (uint32_t status = 100; status <= 599; status++) {
    registered += http::reasonPhrase(status) == "Unknown" ? 0 : 1;
  }
  CHECK(registered == 61); // the registry's 61 codes (104 is only provisional)
}
