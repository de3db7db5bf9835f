#include "core/filter/proxy_headers.h"

#include "core/http/codec.h"

namespace sluice::filter {

namespace {

constexpr std::string_view kVia = "1.1 sluice";

// "name: first, second\r\n": a list field sluice extends with its own element.
void appendJoined(network::Buffer& out, std::string_view name, std::string_view first,
                  std::string_view second) {
  out.append(name);
  out.append(": ");
  out.append(first);
  out.append(", ");
  out.append(second);
  out.append("\r\n");
}

// Small enough to inline: the common case (no earlier element) is one appendHeader call.
inline void appendListHeader(network::Buffer& out, std::string_view name, std::string_view first,
                             std::string_view second) {
  if (first.empty()) {
    http::appendHeader(out, name, second);
  } else {
    appendJoined(out, name, first, second);
  }
}

} // namespace

void writeProxyHeaders(network::Buffer& out, const http::HeaderMap& headers, const ProxyHead& head) {
  // "Connection: keep-alive" / "close" name no other field; anything else may (RFC 9110 §7.6.1).
  std::string_view connection = headers.get("connection");
  bool conn_named = !connection.empty() && !http::iequals(connection, "keep-alive") &&
                    !http::iequals(connection, "close");
  // Copies: the appends below write memory the compiler cannot prove `head` is not in.
  const bool add_forwarded = head.add_forwarded;
  const bool drop_expect = head.drop_expect;
  const std::string_view rid_header = head.request_id_header;
  bool want_rid = !head.request_id.empty();
  std::string_view xff;
  std::string_view via;
  for (const auto& e : headers.entries()) {
    if (isHopByHop(e.name) || (conn_named && http::headerListContains(connection, e.name))) {
      continue;
    }
    if (e.name.size() == 3 && http::iequals(e.name, "via")) {
      via = e.value;
      continue;
    }
    if (add_forwarded) {
      if (e.name.size() == 15 && http::iequals(e.name, "x-forwarded-for")) {
        xff = e.value;
        continue;
      }
      if (e.name.size() == 17 && http::iequals(e.name, "x-forwarded-proto")) {
        continue;
      }
    }
    if (drop_expect && e.name.size() == 6 && http::iequals(e.name, "expect")) {
      continue;
    }
    if (want_rid && http::iequals(e.name, rid_header)) {
      want_rid = false;
    }
    http::appendHeader(out, e.name, e.value);
  }
  if (add_forwarded) {
    appendListHeader(out, "x-forwarded-for", xff, head.client_ip);
    http::appendHeader(out, "x-forwarded-proto", head.forwarded_proto);
  }
  if (want_rid) {
    http::appendHeader(out, rid_header, head.request_id);
  }
  appendListHeader(out, "via", via, kVia);
  switch (head.framing) {
  case BodyFraming::None:
    break;
  case BodyFraming::ContentLength:
    out.append("content-length: ");
    http::appendDecimal(out, head.content_length);
    out.append("\r\n");
    break;
  case BodyFraming::Chunked:
    out.append("transfer-encoding: chunked\r\n");
    break;
  case BodyFraming::Upgrade:
    http::appendHeader(out, "connection", "upgrade");
    http::appendHeader(out, "upgrade", head.upgrade);
    break;
  }
  switch (head.connection) {
  case ConnectionField::None:
    break;
  case ConnectionField::KeepAlive:
    out.append("connection: keep-alive\r\n");
    break;
  case ConnectionField::Close:
    out.append("connection: close\r\n");
    break;
  }
  out.append("\r\n");
}

} // namespace sluice::filter
