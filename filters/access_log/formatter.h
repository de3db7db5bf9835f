#pragma once

// Access-log line formatting: JSON, Apache "combined", or a template parsed once at config load
// into a list of segments. Formatting appends one line (with its '\n') to a caller's buffer and
// allocates nothing once that buffer has grown to its working size.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::filters::access_log {

// Response-flag codes in print order, declared once: X(SLUICE_FLAG_* bit, code).
#define SLUICE_ACCESS_LOG_FLAGS(X)                                                                 \
  X(SLUICE_FLAG_UPSTREAM_TIMEOUT, "UT")                                                            \
  X(SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE, "UF")                                                    \
  X(SLUICE_FLAG_UPSTREAM_OVERFLOW, "UO")                                                           \
  X(SLUICE_FLAG_UPSTREAM_RESET, "UR")                                                              \
  X(SLUICE_FLAG_NO_ROUTE, "NR")                                                                    \
  X(SLUICE_FLAG_RATE_LIMITED, "RL")                                                                \
  X(SLUICE_FLAG_DOWNSTREAM_DISCONNECT, "DC")                                                       \
  X(SLUICE_FLAG_LOCAL_REPLY, "LR")                                                                 \
  X(SLUICE_FLAG_NO_HEALTHY_UPSTREAM, "UH")

enum class HeaderMapKind { Request, Response };

// Values a template asks for by name (%REQ(x)%, %RESP(x)%, %METADATA(k)%), looked up only when a
// line needs them. The filter implements it over the C ABI; tests and benchmarks over maps.
class RecordSource {
public:
  virtual ~RecordSource() = default;
  virtual bool header(HeaderMapKind map, std::string_view name, std::string_view& value) const = 0;
  virtual bool metadata(std::string_view key, std::string_view& value) const = 0;
};

// Everything a line may print for one finished stream. Views borrow host memory for the duration
// of the stream-complete hook; the metadata vector is reused across streams by its owner.
struct Record {
  uint64_t start_unix_us = 0;
  uint64_t duration_us = 0;
  uint64_t upstream_duration_us = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint32_t status = 0;
  uint32_t flags = 0; // SLUICE_FLAG_* bits
  std::string_view request_id;
  std::string_view client_address; // "ip:port"
  std::string_view client_ip;
  std::string_view protocol;
  std::string_view method;
  std::string_view authority;
  std::string_view path;
  std::string_view user_agent;
  std::string_view referer;
  std::string_view upstream_cluster;
  std::string_view upstream_endpoint;
  std::string_view response_details; // the local reply's details (sluice_host_send_local_reply)
  // Every stream metadata pair in insertion order (filled only for formats that print them all).
  std::vector<std::pair<std::string_view, std::string_view>> metadata;
  const RecordSource* source = nullptr; // may be null: named lookups then print "-"
};

enum class FormatKind { Json, Combined, Template };

// One piece of a parsed template.
struct Segment {
  enum class Kind : uint8_t {
    Literal,
    RequestHeader,  // %REQ(name)%
    ResponseHeader, // %RESP(name)%
    Metadata,       // %METADATA(key)%
    Status,
    Duration,
    UpstreamDuration,
    BytesIn,
    BytesOut,
    Client,
    RequestId,
    Flags,
    UpstreamCluster,
    ResponseDetails,
    UpstreamEndpoint,
    StartTime,
    Protocol,
    Method,
    Path,
    Authority,
  };
  Kind kind = Kind::Literal;
  std::string text; // literal text, header name (lower case) or metadata key

  bool operator==(const Segment&) const = default;
};

// Parses "%REQ(:method)% %STATUS% ..." once. "%%" is a literal '%'. Returns nullopt and an
// error message on an unknown command, a bad argument, an unterminated '%' or a control
// character other than tab anywhere in the text (literal text is written as is, so a newline
// would split a log line).
std::optional<std::vector<Segment>> parseTemplate(std::string_view text, std::string& error);

class Formatter {
public:
  static Formatter json() { return Formatter(FormatKind::Json, {}); }
  static Formatter combined() { return Formatter(FormatKind::Combined, {}); }
  static Formatter fromTemplate(std::vector<Segment> segments) {
    return Formatter(FormatKind::Template, std::move(segments));
  }

  FormatKind kind() const { return kind_; }
  const std::vector<Segment>& segments() const { return segments_; }
  // What the caller must gather into a Record before format().
  bool needsMetadataList() const { return kind_ == FormatKind::Json; }
  bool needsUserAgent() const { return kind_ != FormatKind::Template; }
  bool needsReferer() const { return kind_ == FormatKind::Combined; }

  // Appends one line, terminated by '\n'. Every value is escaped, so a line never contains a
  // raw control character and a JSON line always parses.
  void format(const Record& record, std::string& out) const;

private:
  Formatter(FormatKind kind, std::vector<Segment> segments)
      : kind_(kind), segments_(std::move(segments)) {}

  void formatJson(const Record& r, std::string& out) const;
  void formatCombined(const Record& r, std::string& out) const;
  void formatTemplate(const Record& r, std::string& out) const;

  FormatKind kind_;
  std::vector<Segment> segments_;
};

// Building blocks, exposed for tests.

// A JSON string literal (with quotes). Quotes, backslashes and control characters are escaped;
// each byte that is not part of a well-formed UTF-8 sequence becomes U+FFFD.
void appendJsonString(std::string& out, std::string_view value);
// The same into a caller's buffer with at least jsonStringRoom(value.size()) bytes free; returns
// the end of what was written.
constexpr size_t jsonStringRoom(size_t n) { return 10 + 6 * n; } // 8 bytes of slack
char* putJsonString(char* p, std::string_view value);
// Room the put* number and time writers below need at most.
constexpr size_t kUintRoom = 20;
constexpr size_t kMillisRoom = kUintRoom + 4;
constexpr size_t kTimeRoom = 48;
char* putUint(char* p, uint64_t value);
char* putMillis(char* p, uint64_t us);
char* putRfc3339Millis(char* p, uint64_t unix_us);
// A value in a text format (Apache ap_escape_logitem rules): '"' and '\' are backslash-escaped,
// control characters and bytes >= 0x7f become \n, \t, ... or \xhh; an empty value prints "-".
void appendLogText(std::string& out, std::string_view value);
// Flag codes joined by `separator` (no quoting), in SLUICE_ACCESS_LOG_FLAGS order.
void appendFlagCodes(std::string& out, uint32_t flags, char separator);
// 2025-11-24T16:00:00.123Z
void appendRfc3339Millis(std::string& out, uint64_t unix_us);
// 24/Nov/2025:16:00:00 +0000 (Apache %t without the brackets, always UTC)
void appendCommonLogTime(std::string& out, uint64_t unix_us);
// Microseconds as milliseconds with three decimals: 1500 -> "1.500".
void appendMillis(std::string& out, uint64_t us);
void appendUint(std::string& out, uint64_t value);

} // namespace sluice::filters::access_log
