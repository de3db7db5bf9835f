#include "core/filter/stream.h"

#include "core/filter/stream_stats.h"

#include <cstddef>
#include <cstdio>
#include <cstring>

// The stream as the C ABI sees it (core/filter/abi.cc): header maps with the HTTP/2-style
// pseudo-headers, routing, metadata and the stream info record.

namespace sluice::filter {

http::HeaderMap* Stream::headerMap(sluice_header_map_t map) {
  switch (map) {
  case SLUICE_HEADERS_REQUEST:
    return req_ != nullptr ? &req_->headers : nullptr;
  case SLUICE_HEADERS_RESPONSE:
    return resp_ != nullptr ? &resp_->headers : nullptr;
  case SLUICE_TRAILERS_REQUEST:
    return req_ != nullptr ? &req_->trailers : nullptr;
  case SLUICE_TRAILERS_RESPONSE:
    return resp_ != nullptr ? &resp_->trailers : nullptr;
  }
  return nullptr;
}

bool Stream::getHeader(sluice_header_map_t map, std::string_view name, size_t index,
                       std::string_view* out) {
  if (!name.empty() && name[0] == ':') {
    if (index != 0) {
      return false;
    }
    if (map == SLUICE_HEADERS_REQUEST && req_ != nullptr) {
      if (name == ":method") {
        *out = req_->method;
        return true;
      }
      if (name == ":path") {
        *out = path_;
        return true;
      }
      if (name == ":authority") {
        *out = req_->headers.get("host");
        return true;
      }
      if (name == ":scheme") {
        *out = listener_->config->tls ? "https" : "http";
        return true;
      }
    }
    if (map == SLUICE_HEADERS_RESPONSE && resp_ != nullptr && name == ":status") {
      char buf[8];
      int n = snprintf(buf, sizeof(buf), "%u", status_);
      *out = arena_.copy(std::string_view(buf, static_cast<size_t>(n)));
      return true;
    }
    return false;
  }
  http::HeaderMap* m = headerMap(map);
  if (m == nullptr) {
    return false;
  }
  const http::HeaderEntry* e = m->find(name, index);
  if (e == nullptr) {
    return false;
  }
  *out = e->value;
  return true;
}

namespace {

// What may go on the wire from a filter without forging or splitting a line: a header name of
// visible ASCII without ':' (the router's config rule is a subset of this), a value without CR,
// LF or NUL; a request target or authority without spaces or control bytes; a method that is an
// RFC 9110 token.
bool visibleNoSpace(std::string_view v) {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c == 0x7f) {
      return false;
    }
  }
  return !v.empty();
}

bool wireHeaderName(std::string_view name) {
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c >= 0x7f || c == ':') {
      return false;
    }
  }
  return !name.empty();
}

bool wireHeaderValue(std::string_view value) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return false;
    }
  }
  return true;
}

bool methodToken(std::string_view v) {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(ch) !=
                                      std::string_view::npos);
    if (!tchar) {
      return false;
    }
  }
  return !v.empty();
}

} // namespace

bool Stream::setHeader(sluice_header_map_t map, std::string_view name, std::string_view value,
                       bool append) {
  if (!name.empty() && name[0] == ':') {
    if (map == SLUICE_HEADERS_REQUEST && req_ != nullptr) {
      if (name == ":path" && visibleNoSpace(value)) {
        path_ = arena_.copy(value);
        upstream_path_ = {};
        return true;
      }
      if (name == ":authority" && visibleNoSpace(value)) {
        req_->headers.set("host", value);
        return true;
      }
      if (name == ":method" && methodToken(value)) {
        req_->method = arena_.copy(value);
        return true;
      }
    } else if (map == SLUICE_HEADERS_RESPONSE && name == ":status" && !value.empty() &&
               value.size() <= 3) {
      uint32_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') {
          return false;
        }
        v = v * 10 + static_cast<uint32_t>(c - '0');
      }
      if (v >= 100 && v <= 599) {
        status_ = v;
        return true;
      }
    }
    return false; // an unknown pseudo-header, one of another map, or a value it cannot take
  }
  http::HeaderMap* m = headerMap(map);
  if (m == nullptr) {
    return true; // no such map at this point (e.g. response headers before a response): a no-op
  }
  if (!wireHeaderName(name) || !wireHeaderValue(value)) {
    return false; // it would forge or split a header line on the wire
  }
  if (append) {
    m->add(name, value);
  } else {
    m->set(name, value);
  }
  return true;
}

size_t Stream::removeHeader(sluice_header_map_t map, std::string_view name) {
  http::HeaderMap* m = headerMap(map);
  return m == nullptr ? 0 : m->remove(name);
}

bool Stream::route(const sluice_route_t* r) {
  if (r == nullptr || r->size < offsetof(sluice_route_t, per_try_timeout_ms)) {
    return false;
  }
  std::string_view cluster(r->cluster.ptr, r->cluster.len);
  upstream::ClusterPool* pool = worker_.clusters().find(cluster);
  if (pool == nullptr) {
    return false;
  }
  upstream_.setRoute(pool, *r);
  routed_ = true;
  upstream_path_ = r->path.ptr != nullptr ? arena_.copy(std::string_view(r->path.ptr, r->path.len))
                                          : std::string_view();
  route_name_ = arena_.copy(std::string_view(r->route_name.ptr, r->route_name.len));
  return true;
}

bool Stream::metadataGet(std::string_view key, std::string_view* value) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) {
      *value = v;
      return true;
    }
  }
  return false;
}

void Stream::metadataSet(std::string_view key, std::string_view value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = arena_.copy(value);
      return;
    }
  }
  metadata_.emplace_back(arena_.copy(key), arena_.copy(value));
}

bool Stream::metadataAt(size_t i, std::string_view* key, std::string_view* value) const {
  if (i >= metadata_.size()) {
    return false;
  }
  *key = metadata_[i].first;
  *value = metadata_[i].second;
  return true;
}

void Stream::fillInfo(sluice_stream_info_t* info) {
  sluice_stream_info_t full{};
  full.size = sizeof(full);
  const std::string& peer = owner_->peerAddress();
  const std::string& ip = owner_->peerIp();
  full.client_address = {peer.data(), peer.size()};
  full.client_ip = {ip.data(), ip.size()};
  full.request_id = {request_id_.data(), request_id_.size()};
  if (listener_ != nullptr) {
    const std::string& ln = listener_->config->name;
    full.listener = {ln.data(), ln.size()};
    full.tls = listener_->config->tls.has_value();
  }
  full.protocol =
      (req_ != nullptr && req_->minor == 0) ? SLUICE_STR("HTTP/1.0") : SLUICE_STR("HTTP/1.1");
  full.route_name = {route_name_.data(), route_name_.size()};
  if (upstream_.pool() != nullptr) {
    const std::string& cn = upstream_.pool()->info().name();
    full.upstream_cluster = {cn.data(), cn.size()};
  }
  std::string_view endpoint = upstream_.endpointAddress();
  full.upstream_endpoint = {endpoint.data(), endpoint.size()};
  full.response_flags = flags_;
  full.response_status = status_;
  full.start_unix_us = start_unix_us_;
  uint64_t end = active_ ? stats::monotonicUs() : end_us_;
  full.duration_us = end - start_us_;
  full.upstream_duration_us =
      upstream_.headUs() > 0 ? upstream_.headUs() - upstream_.startUs() : 0;
  full.bytes_in = bytes_in_;
  full.bytes_out = bytes_out_;
  full.response_details = {response_details_.data(), response_details_.size()};
  uint32_t n = info->size < sizeof(full) ? info->size : static_cast<uint32_t>(sizeof(full));
  std::memcpy(info, &full, n);
  info->size = n;
}

} // namespace sluice::filter
