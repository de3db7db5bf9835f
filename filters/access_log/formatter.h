#pragma once

// Access-log line formatting: JSON, Apache/nginx "combined", or a template parsed once at
// config load. Formatting appends to a caller's buffer (reused, so no allocation once warm).

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::filters::access_log {

// Everything a line may print, gathered through the ABI at stream completion.
struct Record {
  uint64_t start_unix_us = 0;
  std::string_view request_id, client, client_ip, method, authority, path, protocol, user_agent,
      referer, upstream_cluster, upstream_endpoint;
  uint32_t status = 0;
  uint64_t bytes_in = 0, bytes_out = 0, duration_us = 0, upstream_us = 0;
  uint32_t flags = 0;
  std::vector<std::pair<std::string_view, std::string_view>> metadata;
  // Header lookups for templates: request (map 0) and response (map 1).
  void* lookup_ctx = nullptr;
  bool (*lookup)(void* ctx, int map, std::string_view name, std::string_view* out) = nullptr;
};

enum class Format { Json, Combined, Template };

struct Segment {
  enum class Kind {
    Literal,
    ReqHeader,
    RespHeader,
    Status,
    Duration,
    BytesIn,
    BytesOut,
    Client,
    RequestId,
    Flags,
    UpstreamCluster,
    UpstreamEndpoint,
    Metadata,
    StartTime,
    Protocol,
    Method,
    Path,
    Authority
  };
  Kind kind;
  std::string text; // literal text, header name or metadata key
};

// Parses a template ("%REQ(:method)% %STATUS% ..."). Returns false with an error message.
bool parseTemplate(std::string_view tmpl, std::vector<Segment>& out, std::string& error);

class Formatter {
public:
  explicit Formatter(Format f, std::vector<Segment> segments = {})
      : format_(f), segments_(std::move(segments)) {}
  void format(const Record& r, std::string& out) const;

private:
  void json(const Record& r, std::string& out) const;
  void combined(const Record& r, std::string& out) const;
  void templated(const Record& r, std::string& out) const;
  Format format_;
  std::vector<Segment> segments_;
};

// Helpers exposed for tests.
void appendJsonString(std::string& out, std::string_view s);
void appendFlags(std::string& out, uint32_t flags, bool json);
void appendRfc3339(std::string& out, uint64_t unix_us);

} // namespace sluice::filters::access_log
