#include "filters/access_log/formatter.h"

#include "sluice/filter.h"

#include <cstdio>

namespace sluice::filters::access_log {

namespace {

void appendUint(std::string& out, uint64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof(tmp), "%llu", static_cast<unsigned long long>(v));
  out.append(tmp, static_cast<size_t>(n));
}

void appendMs(std::string& out, uint64_t us) {
  char tmp[32];
  int n = snprintf(tmp, sizeof(tmp), "%llu.%03llu", static_cast<unsigned long long>(us / 1000),
                   static_cast<unsigned long long>(us % 1000));
  out.append(tmp, static_cast<size_t>(n));
}

// Length of a valid UTF-8 sequence at p (0 if invalid).
size_t utf8Len(const unsigned char* p, size_t left) {
  unsigned char c = p[0];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || n > left) {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) {
      return 0;
    }
  }
  if (n == 2 && c < 0xc2) {
    return 0; // overlong
  }
  return n;
}

struct FlagName {
  uint32_t bit;
  const char* code;
};
constexpr FlagName kFlags[] = {{SLUICE_FLAG_UPSTREAM_TIMEOUT, "UT"},
                               {SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE, "UF"},
                               {SLUICE_FLAG_UPSTREAM_OVERFLOW, "UO"},
                               {SLUICE_FLAG_UPSTREAM_RESET, "UR"},
                               {SLUICE_FLAG_NO_ROUTE, "NR"},
                               {SLUICE_FLAG_RATE_LIMITED, "RL"},
                               {SLUICE_FLAG_DOWNSTREAM_DISCONNECT, "DC"},
                               {SLUICE_FLAG_LOCAL_REPLY, "LR"},
                               {SLUICE_FLAG_NO_HEALTHY_UPSTREAM, "UH"}};

void field(std::string& out, const char* name, std::string_view v) {
  out += ",\"";
  out += name;
  out += "\":";
  appendJsonString(out, v);
}

void numField(std::string& out, const char* name, uint64_t v) {
  out += ",\"";
  out += name;
  out += "\":";
  appendUint(out, v);
}

std::string_view dashIfEmpty(std::string_view v) {
  return v.empty() ? std::string_view("-") : v;
}

// Text formats: a control character from a request (or metadata) must not forge a log line.
void appendText(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += '-';
    return;
  }
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
}

} // namespace

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      i++;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      i++;
    } else {
      size_t len = utf8Len(p + i, n - i);
      if (len == 0) {
        out += "\\ufffd"; // invalid UTF-8 byte: every line stays valid JSON
        i++;
      } else {
        out.append(reinterpret_cast<const char*>(p + i), len);
        i += len;
      }
    }
  }
  out += '"';
}

void appendFlags(std::string& out, uint32_t flags, bool json) {
  if (json) {
    out += '[';
  }
  bool first = true;
  for (const auto& f : kFlags) {
    if (flags & f.bit) {
      if (!first) {
        out += ',';
      }
      first = false;
      if (json) {
        out += '"';
      }
      out += f.code;
      if (json) {
        out += '"';
      }
    }
  }
  if (json) {
    out += ']';
  } else if (first) {
    out += '-';
  }
}

void appendRfc3339(std::string& out, uint64_t unix_us) {
  time_t secs = static_cast<time_t>(unix_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[40];
  int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   static_cast<int>((unix_us / 1000) % 1000));
  out.append(buf, static_cast<size_t>(n));
}

bool parseTemplate(std::string_view t, std::vector<Segment>& out, std::string& error) {
  static const std::pair<std::string_view, Segment::Kind> kSimple[] = {
      {"STATUS", Segment::Kind::Status},
      {"DURATION", Segment::Kind::Duration},
      {"BYTES_IN", Segment::Kind::BytesIn},
      {"BYTES_OUT", Segment::Kind::BytesOut},
      {"CLIENT", Segment::Kind::Client},
      {"REQUEST_ID", Segment::Kind::RequestId},
      {"FLAGS", Segment::Kind::Flags},
      {"UPSTREAM_CLUSTER", Segment::Kind::UpstreamCluster},
      {"UPSTREAM_ENDPOINT", Segment::Kind::UpstreamEndpoint},
      {"START_TIME", Segment::Kind::StartTime},
      {"PROTOCOL", Segment::Kind::Protocol},
      {"METHOD", Segment::Kind::Method},
      {"PATH", Segment::Kind::Path},
      {"AUTHORITY", Segment::Kind::Authority}};
  std::string literal;
  size_t i = 0;
  while (i < t.size()) {
    if (t[i] != '%') {
      literal += t[i++];
      continue;
    }
    size_t end = t.find('%', i + 1);
    if (end == std::string_view::npos) {
      error = "unterminated %COMMAND% at offset " + std::to_string(i);
      return false;
    }
    std::string_view cmd = t.substr(i + 1, end - i - 1);
    if (cmd.empty()) { // "%%" is a literal percent
      literal += '%';
      i = end + 1;
      continue;
    }
    if (!literal.empty()) {
      out.push_back({Segment::Kind::Literal, literal});
      literal.clear();
    }
    bool found = false;
    for (const auto& [name, kind] : kSimple) {
      if (cmd == name) {
        out.push_back({kind, ""});
        found = true;
      }
    }
    auto arg = [&](std::string_view prefix, Segment::Kind kind) {
      if (!found && cmd.size() > prefix.size() + 1 && cmd.substr(0, prefix.size()) == prefix &&
          cmd[prefix.size()] == '(' && cmd.back() == ')') {
        out.push_back(
            {kind, std::string(cmd.substr(prefix.size() + 1, cmd.size() - prefix.size() - 2))});
        found = true;
      }
    };
    arg("REQ", Segment::Kind::ReqHeader);
    arg("RESP", Segment::Kind::RespHeader);
    arg("METADATA", Segment::Kind::Metadata);
    if (!found) {
      error = "unknown command %" + std::string(cmd) + "%";
      return false;
    }
    i = end + 1;
  }
  if (!literal.empty()) {
    out.push_back({Segment::Kind::Literal, literal});
  }
  return true;
}

void Formatter::format(const Record& r, std::string& out) const {
  switch (format_) {
  case Format::Json:
    json(r, out);
    break;
  case Format::Combined:
    combined(r, out);
    break;
  case Format::Template:
    templated(r, out);
    break;
  }
  out += '\n';
}

void Formatter::json(const Record& r, std::string& out) const {
  out += "{\"time\":\"";
  appendRfc3339(out, r.start_unix_us);
  out += '"';
  field(out, "request_id", r.request_id);
  field(out, "client", r.client);
  field(out, "method", r.method);
  field(out, "authority", r.authority);
  field(out, "path", r.path);
  field(out, "protocol", r.protocol);
  numField(out, "status", r.status);
  numField(out, "bytes_in", r.bytes_in);
  numField(out, "bytes_out", r.bytes_out);
  out += ",\"duration_ms\":";
  appendMs(out, r.duration_us);
  field(out, "upstream_cluster", r.upstream_cluster);
  field(out, "upstream_endpoint", r.upstream_endpoint);
  out += ",\"upstream_ms\":";
  appendMs(out, r.upstream_us);
  out += ",\"flags\":";
  appendFlags(out, r.flags, true);
  field(out, "user_agent", r.user_agent);
  for (const auto& [k, v] : r.metadata) {
    out += ',';
    appendJsonString(out, k);
    out += ':';
    appendJsonString(out, v);
  }
  out += '}';
}

void Formatter::combined(const Record& r, std::string& out) const {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  appendText(out, r.client_ip);
  out += " - - [";
  time_t secs = static_cast<time_t>(r.start_unix_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[48];
  int n = snprintf(buf, sizeof(buf), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
                   kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  out.append(buf, static_cast<size_t>(n));
  out += "] \"";
  appendText(out, r.method);
  out += ' ';
  appendText(out, r.path);
  out += ' ';
  appendText(out, r.protocol);
  out += "\" ";
  appendUint(out, r.status);
  out += ' ';
  if (r.bytes_out == 0) {
    out += '-';
  } else {
    appendUint(out, r.bytes_out);
  }
  out += " \"";
  appendText(out, r.referer);
  out += "\" \"";
  appendText(out, r.user_agent);
  out += '"';
}

void Formatter::templated(const Record& r, std::string& out) const {
  for (const Segment& s : segments_) {
    std::string_view v;
    switch (s.kind) {
    case Segment::Kind::Literal:
      out += s.text;
      break;
    case Segment::Kind::ReqHeader:
    case Segment::Kind::RespHeader:
      if (r.lookup != nullptr &&
          r.lookup(r.lookup_ctx, s.kind == Segment::Kind::ReqHeader ? 0 : 1, s.text, &v)) {
        appendText(out, v);
      } else {
        out += '-';
      }
      break;
    case Segment::Kind::Status:
      appendUint(out, r.status);
      break;
    case Segment::Kind::Duration:
      appendMs(out, r.duration_us);
      break;
    case Segment::Kind::BytesIn:
      appendUint(out, r.bytes_in);
      break;
    case Segment::Kind::BytesOut:
      appendUint(out, r.bytes_out);
      break;
    case Segment::Kind::Client:
      appendText(out, r.client);
      break;
    case Segment::Kind::RequestId:
      appendText(out, r.request_id);
      break;
    case Segment::Kind::Flags:
      appendFlags(out, r.flags, false);
      break;
    case Segment::Kind::UpstreamCluster:
      appendText(out, r.upstream_cluster);
      break;
    case Segment::Kind::UpstreamEndpoint:
      appendText(out, r.upstream_endpoint);
      break;
    case Segment::Kind::Metadata: {
      bool found = false;
      for (const auto& [k, mv] : r.metadata) {
        if (k == s.text) {
          appendText(out, mv);
          found = true;
          break;
        }
      }
      if (!found) {
        out += '-';
      }
      break;
    }
    case Segment::Kind::StartTime:
      appendRfc3339(out, r.start_unix_us);
      break;
    case Segment::Kind::Protocol:
      appendText(out, r.protocol);
      break;
    case Segment::Kind::Method:
      appendText(out, r.method);
      break;
    case Segment::Kind::Path:
      appendText(out, r.path);
      break;
    case Segment::Kind::Authority:
      appendText(out, r.authority);
      break;
    }
  }
}

} // namespace sluice::filters::access_log
