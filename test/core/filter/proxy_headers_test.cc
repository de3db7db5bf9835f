// The HTTP/1 header block sluice writes when forwarding, in both directions.
#include "core/filter/proxy_headers.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <utility>

using namespace sluice;
using filter::BodyFraming;
using filter::ConnectionField;
using filter::ProxyHead;

namespace {

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

std::string write(Fields fields, const ProxyHead& head) {
  http::Arena arena;
  http::HeaderMap h(arena);
  for (const auto& [n, v] : fields) {
    h.addView(n, v);
  }
  network::Buffer out;
  filter::writeProxyHeaders(out, h, head);
  return std::string(out.view());
}

ProxyHead requestHead() {
  ProxyHead ph;
  ph.add_forwarded = true;
  ph.client_ip = "10.0.0.1";
  ph.forwarded_proto = "http";
  return ph;
}

ProxyHead responseHead() {
  ProxyHead ph;
  ph.request_id_header = "x-request-id";
  ph.request_id = "rid-1";
  return ph;
}

} // namespace

TEST_CASE("ProxyHeaders: hop-by-hop fields are not forwarded", "[filter]") {
  std::string name = GENERATE("Connection", "keep-alive", "TE", "Trailer", "Upgrade",
                              "Proxy-Connection", "Transfer-Encoding", "content-length");
  CHECK(filter::isHopByHop(name));
  bool request = GENERATE(true, false);
  std::string out = write({{"a", "1"}, {name, "x"}, {"b", "2"}},
                          request ? requestHead() : responseHead());
  CHECK(out.find(name + ":") == std::string::npos);
  CHECK(out.find("a: 1\r\nb: 2\r\n") == 0);
}

TEST_CASE("ProxyHeaders: end-to-end fields are forwarded as they came", "[filter]") {
  std::string name = GENERATE("te-x", "upgrades", "connection-id", "x-trailer", "host");
  CHECK_FALSE(filter::isHopByHop(name));
  std::string out = write({{name, "v"}}, requestHead());
  CHECK(out.find(name + ": v\r\n") == 0);
}

TEST_CASE("ProxyHeaders: fields the Connection header names are dropped", "[filter]") {
  SECTION("named fields go, case-insensitively") {
    std::string out =
        write({{"Connection", "X-Secret, close"}, {"x-secret", "s"}, {"x-kept", "k"}},
              requestHead());
    CHECK(out.find("x-secret") == std::string::npos);
    CHECK(out.find("x-kept: k\r\n") != std::string::npos);
  }
  SECTION("keep-alive / close alone name nothing") {
    std::string out = write({{"connection", "close"}, {"close", "c"}}, responseHead());
    CHECK(out.find("close: c\r\n") == 0);
  }
}

TEST_CASE("ProxyHeaders: request side adds X-Forwarded-For, -Proto and Via", "[filter]") {
  SECTION("first hop") {
    std::string out = write({{"host", "h"}}, requestHead());
    CHECK(out == "host: h\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\n"
                 "via: 1.1 sluice\r\n\r\n");
  }
  SECTION("after other proxies: the lists are extended, the proto replaced") {
    std::string out = write({{"X-Forwarded-For", "1.2.3.4"},
                             {"x-forwarded-proto", "https"},
                             {"Via", "1.0 edge"},
                             {"host", "h"}},
                            requestHead());
    CHECK(out == "host: h\r\nx-forwarded-for: 1.2.3.4, 10.0.0.1\r\nx-forwarded-proto: http\r\n"
                 "via: 1.0 edge, 1.1 sluice\r\n\r\n");
  }
  SECTION("Expect is dropped once sluice answered the 100-continue") {
    ProxyHead ph = requestHead();
    ph.drop_expect = GENERATE(true, false);
    std::string out = write({{"Expect", "100-continue"}}, ph);
    CHECK((out.find("Expect") == std::string::npos) == ph.drop_expect);
  }
}

TEST_CASE("ProxyHeaders: response side adds the request id and Via", "[filter]") {
  SECTION("X-Forwarded-* pass through, the request id is added") {
    std::string out = write({{"x-forwarded-for", "9.9.9.9"}, {"Via", "1.1 origin"}},
                            responseHead());
    CHECK(out == "x-forwarded-for: 9.9.9.9\r\nx-request-id: rid-1\r\n"
                 "via: 1.1 origin, 1.1 sluice\r\n\r\n");
  }
  SECTION("an upstream request id is kept, not doubled") {
    std::string out = write({{"X-Request-Id", "up"}}, responseHead());
    CHECK(out == "X-Request-Id: up\r\nvia: 1.1 sluice\r\n\r\n");
  }
}

TEST_CASE("ProxyHeaders: framing and Connection fields", "[filter]") {
  ProxyHead ph = responseHead();
  ph.request_id = {};
  SECTION("content-length") {
    ph.framing = BodyFraming::ContentLength;
    ph.content_length = 1234;
    ph.connection = ConnectionField::KeepAlive;
    CHECK(write({}, ph) == "via: 1.1 sluice\r\ncontent-length: 1234\r\n"
                           "connection: keep-alive\r\n\r\n");
  }
  SECTION("chunked, closing") {
    ph.framing = BodyFraming::Chunked;
    ph.connection = ConnectionField::Close;
    CHECK(write({{"Transfer-Encoding", "gzip, chunked"}}, ph) ==
          "via: 1.1 sluice\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
  }
  SECTION("upgrade") {
    ph.framing = BodyFraming::Upgrade;
    ph.upgrade = "websocket";
    CHECK(write({{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}, ph) ==
          "via: 1.1 sluice\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n");
  }
  SECTION("none") {
    CHECK(write({{"Content-Length", "5"}}, ph) == "via: 1.1 sluice\r\n\r\n");
  }
}
