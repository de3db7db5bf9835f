#include "filters/access_log/formatter.h"

#include "sluice/filter.h"

#include <array>
#include <charconv>
#include <cstring>

namespace sluice::filters::access_log {

namespace {

constexpr char kHex[] = "0123456789abcdef";

struct FlagCode {
  uint32_t bit;
  std::string_view code;
};

constexpr FlagCode kFlagCodes[] = {
#define SLUICE_ACCESS_LOG_FLAG_ENTRY(bit, code) {bit, code},
    SLUICE_ACCESS_LOG_FLAGS(SLUICE_ACCESS_LOG_FLAG_ENTRY)
#undef SLUICE_ACCESS_LOG_FLAG_ENTRY
};

// The fixed JSON fields; a metadata key equal to one of them is printed as "metadata.<key>" so a
// line never carries a duplicate key.
constexpr std::string_view kJsonFields[] = {"time",
                                            "request_id",
                                            "client",
                                            "method",
                                            "authority",
                                            "path",
                                            "protocol",
                                            "status",
                                            "bytes_in",
                                            "bytes_out",
                                            "duration_ms",
                                            "upstream_cluster",
                                            "upstream_endpoint",
                                            "upstream_ms",
                                            "flags",
                                            "user_agent",
                                            "response_details"};

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct CivilTime {
  int64_t year;
  unsigned month; // 1..12
  unsigned day;   // 1..31
  unsigned hour;
  unsigned minute;
  unsigned second;
  unsigned millis;
};

// Howard Hinnant's civil_from_days: no gmtime_r, no locale, no time zone database.
CivilTime civilTime(uint64_t unix_us) {
  const uint64_t secs = unix_us / 1000000;
  const int64_t days = static_cast<int64_t>(secs / 86400);
  const uint64_t sod = secs % 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  return CivilTime{y,
                   m,
                   d,
                   static_cast<unsigned>(sod / 3600),
                   static_cast<unsigned>(sod % 3600 / 60),
                   static_cast<unsigned>(sod % 60),
                   static_cast<unsigned>(unix_us / 1000 % 1000)};
}

char* put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10 % 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

char* putYear(char* p, int64_t year) {
  if (year >= 0 && year <= 9999) {
    const auto y = static_cast<unsigned>(year);
    p = put2(p, y / 100);
    return put2(p, y % 100);
  }
  return std::to_chars(p, p + 24, year).ptr;
}

// Length of the well-formed UTF-8 sequence starting at p[0] >= 0x80 (Unicode Table 3-7), or 0.
size_t utf8SequenceLength(const unsigned char* p, size_t left) {
  const unsigned char c = p[0];
  size_t len;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) {
      lo = 0xa0; // overlong
    } else if (c == 0xed) {
      hi = 0x9f; // UTF-16 surrogates
    }
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) {
      lo = 0x90; // overlong
    } else if (c == 0xf4) {
      hi = 0x8f; // above U+10FFFF
    }
  } else {
    return 0;
  }
  if (len > left || p[1] < lo || p[1] > hi) {
    return 0;
  }
  for (size_t i = 2; i < len; i++) {
    if (p[i] < 0x80 || p[i] > 0xbf) {
      return 0;
    }
  }
  return len;
}

bool isJsonField(std::string_view key) {
  for (std::string_view f : kJsonFields) {
    if (f == key) {
      return true;
    }
  }
  return false;
}

void appendLookup(std::string& out, const Record& r, const Segment& s) {
  std::string_view value;
  bool found = false;
  if (r.source != nullptr) {
    switch (s.kind) {
    case Segment::Kind::RequestHeader:
      found = r.source->header(HeaderMapKind::Request, s.text, value);
      break;
    case Segment::Kind::ResponseHeader:
      found = r.source->header(HeaderMapKind::Response, s.text, value);
      break;
    default:
      found = r.source->metadata(s.text, value);
      break;
    }
  }
  appendLogText(out, found ? value : std::string_view());
}

struct Command {
  std::string_view name;
  Segment::Kind kind;
  bool takes_argument;
};

constexpr Command kCommands[] = {
    {"REQ", Segment::Kind::RequestHeader, true},
    {"RESP", Segment::Kind::ResponseHeader, true},
    {"METADATA", Segment::Kind::Metadata, true},
    {"STATUS", Segment::Kind::Status, false},
    {"DURATION", Segment::Kind::Duration, false},
    {"UPSTREAM_DURATION", Segment::Kind::UpstreamDuration, false},
    {"BYTES_IN", Segment::Kind::BytesIn, false},
    {"BYTES_OUT", Segment::Kind::BytesOut, false},
    {"CLIENT", Segment::Kind::Client, false},
    {"REQUEST_ID", Segment::Kind::RequestId, false},
    {"FLAGS", Segment::Kind::Flags, false},
    {"UPSTREAM_CLUSTER", Segment::Kind::UpstreamCluster, false},
    {"RESPONSE_DETAILS", Segment::Kind::ResponseDetails, false},
    {"UPSTREAM_ENDPOINT", Segment::Kind::UpstreamEndpoint, false},
    {"START_TIME", Segment::Kind::StartTime, false},
    {"PROTOCOL", Segment::Kind::Protocol, false},
    {"METHOD", Segment::Kind::Method, false},
    {"PATH", Segment::Kind::Path, false},
    {"AUTHORITY", Segment::Kind::Authority, false},
};

std::string knownCommands() {
  std::string s;
  for (const Command& c : kCommands) {
    if (!s.empty()) {
      s += ", ";
    }
    s += '%';
    s += c.name;
    s += c.takes_argument ? "(...)%" : "%";
  }
  return s;
}

// RFC 9110 token characters (header field names).
bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool validHeaderName(std::string_view name) {
  if (!name.empty() && name[0] == ':') {
    name.remove_prefix(1); // pseudo-header: ":method", ":path", ":authority", ":status", ...
  }
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!isTokenChar(c)) {
      return false;
    }
  }
  return true;
}

} // namespace

char* putUint(char* p, uint64_t value) {
  return std::to_chars(p, p + kUintRoom, value).ptr;
}

char* putMillis(char* p, uint64_t us) {
  p = putUint(p, us / 1000);
  const auto frac = static_cast<unsigned>(us % 1000);
  p[0] = '.';
  p[1] = static_cast<char>('0' + frac / 100);
  p[2] = static_cast<char>('0' + frac / 10 % 10);
  p[3] = static_cast<char>('0' + frac % 10);
  return p + 4;
}

namespace {

// The text up to the seconds of the last time printed on this thread: consecutive lines of a busy
// worker mostly fall in the same second, so only the milliseconds change.
struct SecondCache {
  uint64_t unix_s = UINT64_MAX;
  uint8_t len = 0;
  char text[kTimeRoom];
};
thread_local SecondCache t_second;

} // namespace

char* putRfc3339Millis(char* p, uint64_t unix_us) {
  const uint64_t unix_s = unix_us / 1000000;
  const auto millis = static_cast<unsigned>(unix_us / 1000 % 1000);
  SecondCache& cache = t_second;
  if (cache.unix_s == unix_s) {
    std::memcpy(p, cache.text, cache.len);
    p += cache.len;
    *p++ = static_cast<char>('0' + millis / 100);
    p = put2(p, millis % 100);
    *p++ = 'Z';
    return p;
  }
  char* const start = p;
  const CivilTime t = civilTime(unix_us);
  p = putYear(p, t.year);
  *p++ = '-';
  p = put2(p, t.month);
  *p++ = '-';
  p = put2(p, t.day);
  *p++ = 'T';
  p = put2(p, t.hour);
  *p++ = ':';
  p = put2(p, t.minute);
  *p++ = ':';
  p = put2(p, t.second);
  *p++ = '.';
  cache.unix_s = unix_s;
  cache.len = static_cast<uint8_t>(p - start);
  std::memcpy(cache.text, start, cache.len);
  *p++ = static_cast<char>('0' + t.millis / 100);
  p = put2(p, t.millis % 100);
  *p++ = 'Z';
  return p;
}

namespace {

// Appends what `put` writes into at most `room` bytes.
template <typename Put> void appendPut(std::string& out, size_t room, Put put) {
  const size_t old = out.size();
  out.resize(old + room);
  char* end = put(out.data() + old);
  out.resize(static_cast<size_t>(end - out.data()));
}

} // namespace

void appendUint(std::string& out, uint64_t value) {
  char buf[kUintRoom];
  out.append(buf, static_cast<size_t>(putUint(buf, value) - buf));
}

void appendMillis(std::string& out, uint64_t us) {
  char buf[kMillisRoom];
  out.append(buf, static_cast<size_t>(putMillis(buf, us) - buf));
}

void appendRfc3339Millis(std::string& out, uint64_t unix_us) {
  char buf[kTimeRoom];
  out.append(buf, static_cast<size_t>(putRfc3339Millis(buf, unix_us) - buf));
}

void appendCommonLogTime(std::string& out, uint64_t unix_us) {
  const CivilTime t = civilTime(unix_us);
  char buf[48];
  char* p = put2(buf, t.day);
  *p++ = '/';
  const std::string_view month = kMonths[t.month - 1];
  p = std::copy(month.begin(), month.end(), p);
  *p++ = '/';
  p = putYear(p, t.year);
  *p++ = ':';
  p = put2(p, t.hour);
  *p++ = ':';
  p = put2(p, t.minute);
  *p++ = ':';
  p = put2(p, t.second);
  const std::string_view zone = " +0000";
  p = std::copy(zone.begin(), zone.end(), p);
  out.append(buf, static_cast<size_t>(p - buf));
}

void appendFlagCodes(std::string& out, uint32_t flags, char separator) {
  bool first = true;
  for (const FlagCode& f : kFlagCodes) {
    if ((flags & f.bit) == 0) {
      continue;
    }
    if (!first) {
      out += separator;
    }
    first = false;
    out += f.code;
  }
}

namespace {

// True when one of the 8 bytes in `w` must be escaped in a JSON string: below 0x20, 0x7f and
// above (non-ASCII goes through the UTF-8 check), '"' or '\\'. Classic SWAR byte tests.
inline bool wordNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t below_space = (w - kOnes * 0x20) & ~w;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  const uint64_t is_quote = (quote - kOnes) & ~quote;
  const uint64_t is_backslash = (backslash - kOnes) & ~backslash;
  const uint64_t del_or_more = w + kOnes; // 0x7f + 1 sets the high bit
  return ((below_space | is_quote | is_backslash | del_or_more | w) & kHigh) != 0;
}

char* putEscape(char* p, unsigned char c) {
  *p++ = '\\';
  switch (c) {
  case '"':
    *p++ = '"';
    break;
  case '\\':
    *p++ = '\\';
    break;
  case '\n':
    *p++ = 'n';
    break;
  case '\r':
    *p++ = 'r';
    break;
  case '\t':
    *p++ = 't';
    break;
  case '\b':
    *p++ = 'b';
    break;
  case '\f':
    *p++ = 'f';
    break;
  default:
    if (c >= 0x80) {
      std::memcpy(p, "ufffd", 5);
    } else {
      const char esc[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      std::memcpy(p, esc, sizeof(esc));
    }
    p += 5;
    break;
  }
  return p;
}

template <typename T> inline T loadAt(const unsigned char* s) {
  T v;
  std::memcpy(&v, s, sizeof(v));
  return v;
}

template <typename T> inline void storeAt(char* p, T v) {
  std::memcpy(p, &v, sizeof(v));
}

// putJsonString from s[i] on, where a byte may need escaping: byte by byte where it must,
// clean words whole; then the closing quote.
char* putJsonStringFrom(char* p, const unsigned char* s, size_t i, size_t n) {
  while (i < n) {
    // Copy clean 8-byte words straight through; the caller's room covers them (one byte of
    // output per byte of input at least).
    while (i + 8 <= n) {
      const auto w = loadAt<uint64_t>(s + i);
      if (wordNeedsEscape(w)) {
        break;
      }
      storeAt(p, w);
      p += 8;
      i += 8;
    }
    if (i >= n) {
      break;
    }
    if (n - i < 8) {
      // The tail, padded with a safe byte to one word: the room has 8 bytes of slack for it.
      uint64_t w = 0x6161616161616161ULL;
      std::memcpy(&w, s + i, n - i);
      if (!wordNeedsEscape(w)) {
        std::memcpy(p, &w, sizeof(w));
        p += n - i;
        break;
      }
    }
    const unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      *p++ = static_cast<char>(c);
      i++;
      continue;
    }
    if (c >= 0x80) {
      const size_t len = utf8SequenceLength(s + i, n - i);
      if (len != 0) {
        std::memcpy(p, s + i, len);
        p += len;
        i += len;
        continue;
      }
    }
    p = putEscape(p, c);
    i++;
  }
  *p++ = '"';
  return p;
}

} // namespace

char* putJsonString(char* p, std::string_view value) {
  // The usual value has nothing to escape: it is tested and copied a word at a time, its tail in
  // one overlapping load with no byte loop. A value with something to escape goes on in
  // putJsonStringFrom from the first word that has it.
  const auto* s = reinterpret_cast<const unsigned char*>(value.data());
  const size_t n = value.size();
  *p++ = '"';
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const auto w = loadAt<uint64_t>(s + i);
    if (wordNeedsEscape(w)) {
      return putJsonStringFrom(p, s, i, n);
    }
    storeAt(p, w);
    p += 8;
  }
  if (i == n) {
    *p = '"';
    return p + 1;
  }
  if (n >= 8) {
    // The last word overlaps bytes already copied; they were clean, so they were copied as they
    // are and are written again the same.
    const auto w = loadAt<uint64_t>(s + n - 8);
    if (wordNeedsEscape(w)) {
      return putJsonStringFrom(p, s, i, n);
    }
    p += n - i;
    storeAt(p - 8, w);
  } else if (n >= 4) {
    // Two overlapping halves, tested as one word.
    const auto lo = loadAt<uint32_t>(s);
    const auto hi = loadAt<uint32_t>(s + n - 4);
    if (wordNeedsEscape(lo | (static_cast<uint64_t>(hi) << 32))) {
      return putJsonStringFrom(p, s, 0, n);
    }
    storeAt(p, lo);
    storeAt(p + n - 4, hi);
    p += n;
  } else {
    // 1 to 3 bytes: the first, the middle and the last (some the same), in a word of safe bytes.
    const unsigned char a = s[0];
    const unsigned char b = s[n / 2];
    const unsigned char c = s[n - 1];
    if (wordNeedsEscape((0x6161616161616161ULL << 24) | a | (b << 8) |
                        (static_cast<uint64_t>(c) << 16))) {
      return putJsonStringFrom(p, s, 0, n);
    }
    p[0] = static_cast<char>(a);
    p[n / 2] = static_cast<char>(b);
    p[n - 1] = static_cast<char>(c);
    p += n;
  }
  *p = '"';
  return p + 1;
}

void appendJsonString(std::string& out, std::string_view value) {
  appendPut(out, jsonStringRoom(value.size()), [&](char* p) { return putJsonString(p, value); });
}

void appendLogText(std::string& out, std::string_view value) {
  if (value.empty()) {
    out += '-';
    return;
  }
  size_t run = 0;
  for (size_t i = 0; i < value.size(); i++) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      continue;
    }
    out.append(value.data() + run, i - run);
    run = i + 1;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default: {
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out.append(esc, sizeof(esc));
      break;
    }
    }
  }
  out.append(value.data() + run, value.size() - run);
}

std::optional<std::vector<Segment>> parseTemplate(std::string_view text, std::string& error) {
  for (size_t i = 0; i < text.size(); i++) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      error = std::string("control character 0x") + kHex[c >> 4] + kHex[c & 15] +
              (c == '\n'   ? " (a newline)"
               : c == '\r' ? " (a carriage return)"
                           : "") +
              " at offset " + std::to_string(i) +
              ": a template's text is written as is, so it would split or garble log lines "
              "(only a tab is allowed)";
      return std::nullopt;
    }
  }
  std::vector<Segment> segments;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    const size_t pct = text.find('%', i);
    if (pct == std::string_view::npos) {
      literal.append(text.substr(i));
      break;
    }
    literal.append(text.substr(i, pct - i));
    const size_t end = text.find('%', pct + 1);
    if (end == std::string_view::npos) {
      error = "unterminated '%' at offset " + std::to_string(pct) +
              " (write %% for a literal percent sign)";
      return std::nullopt;
    }
    const std::string_view body = text.substr(pct + 1, end - pct - 1);
    i = end + 1;
    if (body.empty()) {
      literal += '%';
      continue;
    }
    const size_t paren = body.find('(');
    const std::string_view name = body.substr(0, paren);
    const Command* command = nullptr;
    for (const Command& c : kCommands) {
      if (c.name == name) {
        command = &c;
        break;
      }
    }
    if (command == nullptr) {
      error = "unknown command %" + std::string(body) + "% (known: " + knownCommands() + ")";
      return std::nullopt;
    }
    Segment segment;
    segment.kind = command->kind;
    if (command->takes_argument) {
      if (paren == std::string_view::npos || body.back() != ')' || body.size() < paren + 3) {
        error.assign("%")
            .append(name)
            .append("% needs an argument: %")
            .append(name)
            .append("(name)%");
        return std::nullopt;
      }
      const std::string_view arg = body.substr(paren + 1, body.size() - paren - 2);
      if (command->kind == Segment::Kind::Metadata) {
        segment.text = std::string(arg);
      } else {
        if (!validHeaderName(arg)) {
          error = "%" + std::string(body) + "%: \"" + std::string(arg) + "\" is not a header name";
          return std::nullopt;
        }
        segment.text.reserve(arg.size());
        for (char c : arg) {
          segment.text += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
      }
    } else if (paren != std::string_view::npos) {
      error = "%" + std::string(name) + "% takes no argument";
      return std::nullopt;
    }
    if (!literal.empty()) {
      segments.push_back(Segment{Segment::Kind::Literal, std::move(literal)});
      literal.clear();
    }
    segments.push_back(std::move(segment));
  }
  if (!literal.empty()) {
    segments.push_back(Segment{Segment::Kind::Literal, std::move(literal)});
  }
  return segments;
}

void Formatter::format(const Record& record, std::string& out) const {
  switch (kind_) {
  case FormatKind::Json:
    formatJson(record, out);
    break;
  case FormatKind::Combined:
    formatCombined(record, out);
    break;
  case FormatKind::Template:
    formatTemplate(record, out);
    break;
  }
  out += '\n';
}

namespace {

// Copies a literal whose length is known at compile time (no terminating NUL).
template <size_t N> char* putLiteral(char* p, const char (&text)[N]) {
  std::memcpy(p, text, N - 1);
  return p + N - 1;
}

} // namespace

void Formatter::formatJson(const Record& r, std::string& out) const {
  // One bound for the whole line, then a cursor: no capacity check per piece.
  size_t room = 640; // keys and punctuation (~230), numbers (108), the time (48), all flags (45)
  for (std::string_view v :
       {r.request_id, r.client_address, r.method, r.authority, r.path, r.protocol,
        r.upstream_cluster, r.upstream_endpoint, r.user_agent, r.response_details}) {
    room += jsonStringRoom(v.size());
  }
  for (const auto& [key, value] : r.metadata) {
    room += 16 + jsonStringRoom(key.size()) + jsonStringRoom(value.size());
  }
  appendPut(out, room, [&](char* p) {
    p = putLiteral(p, "{\"time\":\"");
    p = putRfc3339Millis(p, r.start_unix_us);
    p = putLiteral(p, "\",\"request_id\":");
    p = putJsonString(p, r.request_id);
    p = putLiteral(p, ",\"client\":");
    p = putJsonString(p, r.client_address);
    p = putLiteral(p, ",\"method\":");
    p = putJsonString(p, r.method);
    p = putLiteral(p, ",\"authority\":");
    p = putJsonString(p, r.authority);
    p = putLiteral(p, ",\"path\":");
    p = putJsonString(p, r.path);
    p = putLiteral(p, ",\"protocol\":");
    p = putJsonString(p, r.protocol);
    p = putLiteral(p, ",\"status\":");
    p = putUint(p, r.status);
    p = putLiteral(p, ",\"bytes_in\":");
    p = putUint(p, r.bytes_in);
    p = putLiteral(p, ",\"bytes_out\":");
    p = putUint(p, r.bytes_out);
    p = putLiteral(p, ",\"duration_ms\":");
    p = putMillis(p, r.duration_us);
    p = putLiteral(p, ",\"upstream_cluster\":");
    p = putJsonString(p, r.upstream_cluster);
    p = putLiteral(p, ",\"upstream_endpoint\":");
    p = putJsonString(p, r.upstream_endpoint);
    p = putLiteral(p, ",\"upstream_ms\":");
    p = putMillis(p, r.upstream_duration_us);
    p = putLiteral(p, ",\"flags\":[");
    bool first = true;
    for (const FlagCode& f : kFlagCodes) {
      if ((r.flags & f.bit) == 0) {
        continue;
      }
      if (!first) {
        *p++ = ',';
      }
      first = false;
      *p++ = '"';
      std::memcpy(p, f.code.data(), f.code.size());
      p += f.code.size();
      *p++ = '"';
    }
    p = putLiteral(p, "],\"user_agent\":");
    p = putJsonString(p, r.user_agent);
    if (!r.response_details.empty()) {
      p = putLiteral(p, ",\"response_details\":");
      p = putJsonString(p, r.response_details);
    }
    for (const auto& [key, value] : r.metadata) {
      *p++ = ',';
      if (isJsonField(key)) {
        // A fixed field name: plain ASCII and at most 17 bytes, nothing to escape.
        p = putLiteral(p, "\"metadata.");
        std::memcpy(p, key.data(), key.size());
        p += key.size();
        *p++ = '"';
      } else {
        p = putJsonString(p, key);
      }
      *p++ = ':';
      p = putJsonString(p, value);
    }
    *p++ = '}';
    return p;
  });
}

void Formatter::formatCombined(const Record& r, std::string& out) const {
  appendLogText(out, r.client_ip.empty() ? r.client_address : r.client_ip);
  out += " - - [";
  appendCommonLogTime(out, r.start_unix_us);
  out += "] \"";
  appendLogText(out, r.method);
  out += ' ';
  appendLogText(out, r.path);
  out += ' ';
  appendLogText(out, r.protocol);
  out += "\" ";
  appendUint(out, r.status);
  out += ' ';
  if (r.bytes_out == 0) {
    out += '-';
  } else {
    appendUint(out, r.bytes_out);
  }
  out += " \"";
  appendLogText(out, r.referer);
  out += "\" \"";
  appendLogText(out, r.user_agent);
  out += '"';
}

void Formatter::formatTemplate(const Record& r, std::string& out) const {
  for (const Segment& s : segments_) {
    switch (s.kind) {
    case Segment::Kind::Literal:
      out += s.text;
      break;
    case Segment::Kind::RequestHeader:
    case Segment::Kind::ResponseHeader:
    case Segment::Kind::Metadata:
      appendLookup(out, r, s);
      break;
    case Segment::Kind::Status:
      appendUint(out, r.status);
      break;
    case Segment::Kind::Duration:
      appendMillis(out, r.duration_us);
      break;
    case Segment::Kind::UpstreamDuration:
      appendMillis(out, r.upstream_duration_us);
      break;
    case Segment::Kind::BytesIn:
      appendUint(out, r.bytes_in);
      break;
    case Segment::Kind::BytesOut:
      appendUint(out, r.bytes_out);
      break;
    case Segment::Kind::Client:
      appendLogText(out, r.client_address);
      break;
    case Segment::Kind::RequestId:
      appendLogText(out, r.request_id);
      break;
    case Segment::Kind::Flags:
      if (r.flags == 0) {
        out += '-';
      } else {
        appendFlagCodes(out, r.flags, ',');
      }
      break;
    case Segment::Kind::UpstreamCluster:
      appendLogText(out, r.upstream_cluster);
      break;
    case Segment::Kind::ResponseDetails:
      appendLogText(out, r.response_details);
      break;
    case Segment::Kind::UpstreamEndpoint:
      appendLogText(out, r.upstream_endpoint);
      break;
    case Segment::Kind::StartTime:
      appendRfc3339Millis(out, r.start_unix_us);
      break;
    case Segment::Kind::Protocol:
      appendLogText(out, r.protocol);
      break;
    case Segment::Kind::Method:
      appendLogText(out, r.method);
      break;
    case Segment::Kind::Path:
      appendLogText(out, r.path);
      break;
    case Segment::Kind::Authority:
      appendLogText(out, r.authority);
      break;
    }
  }
}

} // namespace sluice::filters::access_log
