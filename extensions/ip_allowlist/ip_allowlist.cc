// ip_allowlist: answers 403 (configurable) to clients whose address is outside a list of CIDR
// ranges, IPv4 and IPv6. Written with the C++ SDK (sluice/sdk/filter.hpp); see README.md.

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/filter.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>

namespace sluice::extensions::ip_allowlist {

struct Range {
  bool v6 = false;
  std::array<uint8_t, 16> addr{}; // v4 ranges use the first 4 bytes
  unsigned prefix = 0;            // bits
};

// Parses "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n"; an IPv4-mapped IPv6 range becomes IPv4.
// False when malformed or when host bits are set below the prefix (a likely typo).
inline bool parseRange(std::string_view text, Range& out, std::string& why) {
  std::string s(text);
  std::string addr = s;
  long prefix = -1;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    addr = s.substr(0, slash);
    std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) {
      why = "invalid prefix length";
      return false;
    }
    prefix = std::stol(p);
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    out.v6 = false;
    std::memcpy(out.addr.data(), &a4, 4);
    if (prefix > 32) {
      why = "an IPv4 prefix length is 0..32";
      return false;
    }
    out.prefix = prefix < 0 ? 32 : static_cast<unsigned>(prefix);
  } else if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
    if (prefix > 128) {
      why = "an IPv6 prefix length is 0..128";
      return false;
    }
    out.v6 = true;
    std::memcpy(out.addr.data(), &a6, 16);
    out.prefix = prefix < 0 ? 128 : static_cast<unsigned>(prefix);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (out.prefix >= 96 && std::memcmp(out.addr.data(), kMapped, 12) == 0) {
      std::memmove(out.addr.data(), out.addr.data() + 12, 4);
      std::memset(out.addr.data() + 4, 0, 12);
      out.v6 = false;
      out.prefix -= 96;
    }
  } else {
    why = "expected an IPv4 or IPv6 address or CIDR range";
    return false;
  }
  size_t bytes = out.v6 ? 16 : 4;
  for (size_t bit = out.prefix; bit < bytes * 8; bit++) {
    if (out.addr[bit / 8] & (0x80u >> (bit % 8))) {
      why = "host bits are set below the prefix length";
      return false;
    }
  }
  return true;
}

// A range as the closed interval [lo, hi] of addresses, as 128-bit numbers (IPv4 in the low 32
// bits). The config keeps them sorted and merged, so a lookup is a binary search, never a scan.
using U128 = unsigned __int128;
struct Interval {
  U128 lo = 0;
  U128 hi = 0;
};

inline U128 toNumber(const uint8_t* a, size_t bytes) {
  U128 v = 0;
  for (size_t i = 0; i < bytes; i++) {
    v = (v << 8) | a[i];
  }
  return v;
}

inline Interval toInterval(const Range& r) {
  const unsigned bits = r.v6 ? 128 : 32;
  const unsigned host_bits = bits - r.prefix;
  const U128 span = host_bits == 128 ? ~U128(0) : (U128(1) << host_bits) - 1;
  const U128 base = toNumber(r.addr.data(), r.v6 ? 16 : 4);
  return Interval{base, base | span};
}

// Sorts and merges overlapping and adjacent intervals: the result is disjoint and ascending.
inline std::vector<Interval> mergeIntervals(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) { return a.lo < b.lo; });
  std::vector<Interval> out;
  for (const Interval& i : v) {
    if (!out.empty() && (out.back().hi == ~U128(0) || i.lo <= out.back().hi + 1)) {
      out.back().hi = std::max(out.back().hi, i.hi);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

// True if x lies in one of the sorted, disjoint intervals (binary search).
inline bool contains(const std::vector<Interval>& v, U128 x) {
  auto it = std::upper_bound(v.begin(), v.end(), x,
                             [](U128 value, const Interval& i) { return value < i.lo; });
  if (it == v.begin()) {
    return false;
  }
  --it;
  return x <= it->hi;
}

class AllowlistFilter;

class AllowlistConfig {
public:
  static std::unique_ptr<AllowlistConfig> create(sdk::ConfigContext& ctx) {
    auto c = std::make_unique<AllowlistConfig>();
    sdk::ConfigReader r(ctx);
    sdk::json::Value root;
    if (!r.parse(root)) {
      return nullptr;
    }
    // Unknown keys are errors; reading goes on to report every mistake at once.
    r.object(root, "", {"allow", "status", "body"});
    std::vector<std::string> allow;
    std::vector<Interval> v4;
    std::vector<Interval> v6;
    if (r.strings(root, "", "allow", allow, true, true)) {
      for (size_t i = 0; i < allow.size(); i++) {
        Range range;
        std::string why;
        if (!parseRange(allow[i], range, why)) {
          r.error("/allow/" + std::to_string(i), why + ", got \"" + allow[i] + "\"");
          continue;
        }
        (range.v6 ? v6 : v4).push_back(toInterval(range));
      }
    }
    c->v4_ = mergeIntervals(std::move(v4));
    c->v6_ = mergeIntervals(std::move(v6));
    uint64_t status = 403;
    r.uint(root, "", "status", status, 400, 599);
    c->status_ = static_cast<uint32_t>(status);
    r.str(root, "", "body", c->body_);
    c->denied_ = ctx.counter("sluice_ip_allowlist_denied_total",
                             "Requests denied because the client address is not allowed",
                             {{"filter", std::string(ctx.name())}});
    return r.ok() ? std::move(c) : nullptr;
  }

  std::unique_ptr<AllowlistFilter> newFilter(sdk::Stream stream) const;

  // True if the textual client address is in an allowed range.
  bool allowed(std::string_view ip) const {
    char buf[INET6_ADDRSTRLEN + 1];
    if (ip.empty() || ip.size() >= sizeof buf) {
      return false;
    }
    std::memcpy(buf, ip.data(), ip.size());
    buf[ip.size()] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET, buf, a) == 1) {
      return contains(v4_, toNumber(a, 4));
    }
    if (inet_pton(AF_INET6, buf, a) != 1) {
      return false;
    }
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a, kMapped, 12) == 0) {
      return contains(v4_, toNumber(a + 12, 4));
    }
    return contains(v6_, toNumber(a, 16));
  }

  uint32_t status() const { return status_; }
  const std::string& body() const { return body_; }
  const sdk::Metric& denied() const { return denied_; }

private:
  std::vector<Interval> v4_; // sorted, disjoint
  std::vector<Interval> v6_; // sorted, disjoint
  uint32_t status_ = 403;
  std::string body_ = "forbidden\n";
  sdk::Metric denied_;
};

class AllowlistFilter : public sdk::Filter {
public:
  AllowlistFilter(const AllowlistConfig& config, sdk::Stream stream)
      : Filter(stream), config_(config) {}

  // Only created for a client outside the list (see newFilter): deny.
  sluice_status_t onRequestHeaders(bool) override {
    config_.denied().add();
    stream().sendLocalReply(config_.status(), config_.body(), {}, "ip_allowlist");
    return sdk::kStop;
  }

private:
  const AllowlistConfig& config_;
};

// The decision needs only the client address, known when the stream starts: an allowed client
// gets no filter object at all (nullptr skips the filter for the stream, no allocation).
inline std::unique_ptr<AllowlistFilter> AllowlistConfig::newFilter(sdk::Stream stream) const {
  if (allowed(sdk::toView(stream.info().client_ip))) {
    return nullptr;
  }
  return std::make_unique<AllowlistFilter>(*this, stream);
}

} // namespace sluice::extensions::ip_allowlist

SLUICE_SDK_MODULE(
    "ip_allowlist",
    sluice::sdk::filterType<sluice::extensions::ip_allowlist::AllowlistConfig>("ip_allowlist"))
