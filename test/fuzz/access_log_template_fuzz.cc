// The access-log template parser (filters/access_log/formatter.cc): arbitrary format strings,
// and every template that parses formats one full record (named lookups included), checking the
// formatter's promise that a value never puts a raw control character in a line.

#include "filters/access_log/formatter.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace alog = sluice::filters::access_log;

namespace {

struct Source : alog::RecordSource {
  bool header(alog::HeaderMapKind, std::string_view name, std::string_view& value) const override {
    if (name.empty() || name[0] == 'x') {
      return false;
    }
    value = "v\x01\"\\\xff\xc3\xa9";
    return true;
  }
  bool metadata(std::string_view key, std::string_view& value) const override {
    value = key;
    return !key.empty();
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto segments = alog::parseTemplate(text, error);
  if (!segments) {
    if (error.empty()) {
      __builtin_trap(); // a refusal always says why
    }
    return 0;
  }
  static const Source source;
  alog::Record r;
  r.start_unix_us = 1764000000123456ull;
  r.duration_us = 1500;
  r.upstream_duration_us = 999;
  r.bytes_in = 10;
  r.bytes_out = 20;
  r.status = 503;
  r.flags = 0x1ff;
  r.request_id = "id";
  r.client_address = "10.0.0.1:5000";
  r.client_ip = "10.0.0.1";
  r.protocol = "HTTP/1.1";
  r.method = "GET";
  r.authority = "exa\nmple";
  r.path = "/p\x7f";
  r.upstream_cluster = "backend";
  r.upstream_endpoint = "10.0.0.2:80";
  r.metadata = {{"k", "v"}};
  r.source = &source;
  alog::Formatter f = alog::Formatter::fromTemplate(std::move(*segments));
  std::string line;
  f.format(r, line);
  r.source = nullptr;
  f.format(r, line);
  // Literal text is the config author's and printed as written; values must be escaped.
  bool literal_controls = false;
  for (char c : text) {
    literal_controls = literal_controls || static_cast<unsigned char>(c) < 0x20;
  }
  for (size_t i = 0; i < line.size() && !literal_controls; i++) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 && c != '\n') {
      __builtin_trap();
    }
  }
  if (line.empty() || line.back() != '\n') {
    __builtin_trap();
  }
  return 0;
}
