// body_transform: buffers a whole request and/or response body (STOP_AND_BUFFER) and rewrites
// it with find/replace rules from the config. Written with the C++ SDK; see README.md.

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/filter.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::extensions::body_transform {

struct Replacement {
  std::string find;
  std::string replace;
};

// Applies every rule in order, each to the output of the previous; every non-overlapping
// occurrence, left to right. Returns false (out untouched) when nothing matched.
inline bool rewrite(std::string_view body, const std::vector<Replacement>& rules, std::string& out,
                    std::string& scratch) {
  bool changed = false;
  std::string_view cur = body;
  for (const Replacement& r : rules) {
    size_t at = cur.find(r.find);
    if (at == std::string_view::npos) {
      continue;
    }
    scratch.clear();
    size_t from = 0;
    while (at != std::string_view::npos) {
      scratch.append(cur.substr(from, at - from));
      scratch.append(r.replace);
      from = at + r.find.size();
      at = cur.find(r.find, from);
    }
    scratch.append(cur.substr(from));
    out.swap(scratch);
    cur = out;
    changed = true;
  }
  return changed;
}

class TransformFilter;

class TransformConfig {
public:
  struct Direction {
    std::vector<Replacement> rules;
  };

  static std::unique_ptr<TransformConfig> create(sdk::ConfigContext& ctx) {
    auto c = std::make_unique<TransformConfig>();
    sdk::ConfigReader r(ctx);
    sdk::json::Value root;
    if (!r.parse(root)) {
      return nullptr;
    }
    // Unknown keys are errors; reading goes on to report every mistake at once.
    r.object(root, "", {"request", "response", "content_types", "max_body_bytes"});
    rules(r, root, "request", c->dir_[SLUICE_DIRECTION_REQUEST].rules);
    rules(r, root, "response", c->dir_[SLUICE_DIRECTION_RESPONSE].rules);
    if (r.ok() && c->dir_[0].rules.empty() && c->dir_[1].rules.empty()) {
      r.error("", "expected \"request\" and/or \"response\" rules");
    }
    r.strings(root, "", "content_types", c->content_types_);
    for (std::string& t : c->content_types_) {
      for (char& ch : t) {
        ch = lowerChar(ch);
      }
    }
    r.uint(root, "", "max_body_bytes", c->max_body_bytes_, 1, uint64_t(1) << 30);
    c->rewritten_ =
        ctx.counter("sluice_body_transform_rewritten_total", "Bodies changed by body_transform",
                    {{"filter", std::string(ctx.name())}});
    return r.ok() ? std::move(c) : nullptr;
  }

  std::unique_ptr<TransformFilter> newFilter(sdk::Stream stream) const;

  const std::vector<Replacement>& rulesFor(sluice_direction_t d) const { return dir_[d].rules; }
  uint64_t maxBodyBytes() const { return max_body_bytes_; }
  const sdk::Metric& rewritten() const { return rewritten_; }

  // True when the message of this header map is one to rewrite (type, encoding, size).
  bool wants(const sdk::Stream& s, sluice_header_map_t map) const {
    auto encoding = s.header(map, "content-encoding");
    if (encoding && !equalsLower(*encoding, "identity")) {
      return false; // compressed bodies are passed through untouched
    }
    auto length = s.header(map, "content-length");
    if (length && !length->empty() && length->size() < 19) {
      uint64_t n = 0;
      for (char ch : *length) {
        n = ch >= '0' && ch <= '9' ? n * 10 + static_cast<uint64_t>(ch - '0') : n;
      }
      if (n > max_body_bytes_) {
        return false;
      }
    }
    if (content_types_.empty()) {
      return true;
    }
    std::string_view type = s.header(map, "content-type").value_or("");
    for (const std::string& prefix : content_types_) {
      if (startsWithLower(type, prefix)) {
        return true;
      }
    }
    return false;
  }

private:
  static char lowerChar(char ch) {
    return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch;
  }
  // True when `v`, lower-cased, starts with `prefix` (already lower case). No copy: this runs
  // per request.
  static bool startsWithLower(std::string_view v, std::string_view prefix) {
    if (v.size() < prefix.size()) {
      return false;
    }
    for (size_t i = 0; i < prefix.size(); i++) {
      if (lowerChar(v[i]) != prefix[i]) {
        return false;
      }
    }
    return true;
  }
  static bool equalsLower(std::string_view v, std::string_view lower) {
    return v.size() == lower.size() && startsWithLower(v, lower);
  }

  static void rules(sdk::ConfigReader& r, const sdk::json::Value& root, const char* key,
                    std::vector<Replacement>& out) {
    const sdk::json::Value* a = r.array(root, "", key, false, true);
    if (a == nullptr) {
      return;
    }
    for (size_t i = 0; i < a->items().size(); i++) {
      const sdk::json::Value& item = a->items()[i];
      std::string ptr = std::string("/") + key + "/" + std::to_string(i);
      if (!r.object(item, ptr, {"find", "replace"})) {
        continue;
      }
      Replacement rep;
      bool ok = r.str(item, ptr, "find", rep.find, true, true);
      ok = r.str(item, ptr, "replace", rep.replace, true) && ok;
      if (ok) {
        out.push_back(std::move(rep));
      }
    }
  }

  Direction dir_[2];
  std::vector<std::string> content_types_;
  uint64_t max_body_bytes_ = 1024 * 1024;
  sdk::Metric rewritten_;
};

class TransformFilter : public sdk::Filter {
public:
  TransformFilter(const TransformConfig& config, sdk::Stream stream)
      : Filter(stream), config_(config) {}

  sluice_status_t onRequestHeaders(bool end_stream) override {
    return start(SLUICE_DIRECTION_REQUEST, SLUICE_HEADERS_REQUEST, end_stream);
  }
  sluice_status_t onRequestBody(bool end_stream) override {
    return body(SLUICE_DIRECTION_REQUEST, end_stream);
  }
  sluice_status_t onResponseHeaders(bool end_stream) override {
    return start(SLUICE_DIRECTION_RESPONSE, SLUICE_HEADERS_RESPONSE, end_stream);
  }
  sluice_status_t onResponseBody(bool end_stream) override {
    return body(SLUICE_DIRECTION_RESPONSE, end_stream);
  }

private:
  // Headers: ask the host to buffer the whole body when this message is to be rewritten.
  sluice_status_t start(sluice_direction_t dir, sluice_header_map_t map, bool end_stream) {
    if (end_stream || config_.rulesFor(dir).empty() || !config_.wants(stream(), map)) {
      return sdk::kContinue;
    }
    buffering_[dir] = true;
    return sdk::kStopAndBuffer;
  }

  // Body: called with end_stream once the whole body is buffered.
  sluice_status_t body(sluice_direction_t dir, bool end_stream) {
    if (!buffering_[dir]) {
      return sdk::kContinue;
    }
    if (!end_stream) {
      return sdk::kStopAndBuffer;
    }
    buffering_[dir] = false;
    std::string_view data = stream().body(dir);
    if (data.size() > config_.maxBodyBytes()) {
      return sdk::kContinue; // larger than allowed (no Content-Length told us): untouched
    }
    // Per-worker scratch buffers: no allocation per request once they have grown.
    thread_local std::string out;
    thread_local std::string scratch;
    if (rewrite(data, config_.rulesFor(dir), out, scratch)) {
      stream().replaceBody(dir, out); // the host copies it and fixes Content-Length
      config_.rewritten().add();
    }
    return sdk::kContinue;
  }

  const TransformConfig& config_;
  bool buffering_[2] = {false, false};
};

inline std::unique_ptr<TransformFilter> TransformConfig::newFilter(sdk::Stream stream) const {
  return std::make_unique<TransformFilter>(*this, stream);
}

} // namespace sluice::extensions::body_transform

SLUICE_SDK_MODULE(
    "body_transform",
    sluice::sdk::filterType<sluice::extensions::body_transform::TransformConfig>("body_transform"))
