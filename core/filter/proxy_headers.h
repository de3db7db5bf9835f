#pragma once

// The HTTP/1 header block sluice writes when it forwards a message, in either direction: the
// end-to-end fields of the message (hop-by-hop ones and those the Connection header names are
// dropped), the forwarding fields (X-Forwarded-For/-Proto on requests, the request id on
// responses, Via on both), then the framing and Connection fields sluice decides itself.
// Pure: writes into a buffer, no allocation beyond the buffer's own growth.

#include "core/http/header_map.h"
#include "core/network/buffer.h"

#include <cstdint>
#include <string_view>

namespace sluice::filter {

// How the body is delimited on the outgoing connection.
enum class BodyFraming : uint8_t {
  None,          // no framing field (no body, or delimited by the connection's close)
  ContentLength, // content-length: <content_length>
  Chunked,       // transfer-encoding: chunked
  Upgrade,       // connection: upgrade + upgrade: <upgrade>; the connection becomes a tunnel
};

// The Connection field sluice adds after the framing (never with BodyFraming::Upgrade).
enum class ConnectionField : uint8_t { None, KeepAlive, Close };

struct ProxyHead {
  // Request side: X-Forwarded-For gets client_ip appended to what the client sent, and
  // X-Forwarded-Proto is replaced. Response side (false): X-Forwarded-* pass through untouched.
  bool add_forwarded = false;
  std::string_view client_ip;
  std::string_view forwarded_proto;
  // Drop Expect (sluice answered the client's 100-continue itself).
  bool drop_expect = false;
  // When non-empty: the request id, written under request_id_header unless the message has one.
  std::string_view request_id_header;
  std::string_view request_id;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  std::string_view upgrade;
  ConnectionField connection = ConnectionField::None;
};

// Hop-by-hop fields (RFC 9110 §7.6.1) plus the framing fields sluice writes itself. Inline:
// it runs for every field of every forwarded message.
inline bool isHopByHop(std::string_view name) {
  switch (name.size()) {
  case 2:
    return http::iequals(name, "te");
  case 7:
    return http::iequals(name, "trailer") || http::iequals(name, "upgrade");
  case 10:
    return http::iequals(name, "connection") || http::iequals(name, "keep-alive");
  case 14:
    return http::iequals(name, "content-length");
  case 16:
    return http::iequals(name, "proxy-connection");
  case 17:
    return http::iequals(name, "transfer-encoding");
  default:
    return false;
  }
}

// Writes the header fields of `headers` as forwarded, the fields `head` asks for, and the blank
// line that ends the block; the caller wrote the start line.
void writeProxyHeaders(network::Buffer& out, const http::HeaderMap& headers, const ProxyHead& head);

} // namespace sluice::filter
