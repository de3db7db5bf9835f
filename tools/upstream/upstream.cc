// sluice-test-upstream: a controllable HTTP/1.1 origin for the integration tests and the
// quickstart demo. One thread per connection, plain POSIX sockets, no dependencies.
// Keep-alive and pipelining; request bodies (content-length or chunked, with extensions and
// trailers) are streamed through SHA-256 and never stored; `Expect: 100-continue` is answered.
//
//   /echo (and any other path)  200, JSON: name, method, path (raw target), version, headers
//                               (wire order), trailers, body_len, body_sha256
//   /status/NNN                 that status, body "status NNN\n" (none for 1xx/204/304)
//   /delay?ms=N                 answer after N ms
//   /bytes?n=N[&chunked=1]      N bytes ('a' + i % 26), x-body-sha256 header
//   /drip?n=N&ms=M              chunked: N pieces "piece I\n", one every M ms
//   /trailers                   chunked "with trailers\n", then the trailer x-upstream-trailer: 1
//   /slow-headers?ms=M          the head one line every M ms (default 200), then "slow\n"
//   /response-headers?h=N:V...  echo JSON plus each `h` (percent-decoded) as a response header
//   /close                      200, `connection: close`, then close
//   /close-mid-body             Content-Length 1000, 100 bytes, close
//   /reset                      RST (SO_LINGER 0) right after reading the request
//   /no-response                read the request, never answer, hold the socket until closed
//   /garbage                    "this is not http\r\n\r\n", then close
//   /ws                         101 for a WebSocket upgrade (RFC 6455 accept), then echo raw bytes
//   /healthz                    200 "ok\n" (or --health-status / --health-file / /control/health)
//   /control/health?status=N    set the /healthz status from now on
//   /count                      requests served so far (this one included)
//   /stats                      JSON: requests, connections_open, connections_total, in_flight
//
// --delay-ms N delays every answer by N ms (after the request is read); --status N answers
// every request but /healthz, /stats and /control/* with status N.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxHeadBytes = 1 << 20;

std::string g_name = "upstream";
std::string g_health_file;
int g_delay_ms = 0;     // --delay-ms: added before every response (a uniformly slow endpoint)
int g_force_status = 0; // --status: every answer but /healthz gets this status (a failing one)
std::atomic<int> g_health_status{200};
std::atomic<uint64_t> g_requests{0};
std::atomic<uint64_t> g_connections_open{0};
std::atomic<uint64_t> g_connections_total{0};
std::atomic<uint64_t> g_in_flight{0};

// ---------------------------------------------------------------- SHA-256 (FIPS 180-4)
struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf[64];
  size_t len = 0;
  uint64_t total = 0;
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
      w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 |
             p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + S1 + ch + k[i] + w[i];
      uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = S0 + mj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  void update(const void* data, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    total += n;
    while (n > 0) {
      size_t take = std::min(n, 64 - len);
      memcpy(buf + len, p, take);
      len += take;
      p += take;
      n -= take;
      if (len == 64) {
        block(buf);
        len = 0;
      }
    }
  }
  std::string hex() {
    uint64_t bits = total * 8;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (len != 56) {
      update(&zero, 1);
    }
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) {
      lenb[i] = uint8_t(bits >> (56 - 8 * i));
    }
    update(lenb, 8);
    char out[65];
    for (int i = 0; i < 8; i++) {
      snprintf(out + 8 * i, 9, "%08x", h[i]);
    }
    return std::string(out, 64);
  }
};

// ---------------------------------------------------------------- SHA-1 + base64 (RFC 6455)
std::string sha1Base64(const std::string& msg) {
  uint32_t h0 = 0x67452301, h1 = 0xEFCDAB89, h2 = 0x98BADCFE, h3 = 0x10325476, h4 = 0xC3D2E1F0;
  std::string m = msg;
  uint64_t bits = uint64_t(m.size()) * 8;
  m += char(0x80);
  while (m.size() % 64 != 56) {
    m += char(0);
  }
  for (int i = 7; i >= 0; i--) {
    m += char(bits >> (8 * i));
  }
  auto rotl = [](uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  for (size_t off = 0; off < m.size(); off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
      w[i] = uint32_t(uint8_t(m[off + 4 * i])) << 24 | uint32_t(uint8_t(m[off + 4 * i + 1])) << 16 |
             uint32_t(uint8_t(m[off + 4 * i + 2])) << 8 | uint8_t(m[off + 4 * i + 3]);
    }
    for (int i = 16; i < 80; i++) {
      w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = h0, b = h1, c = h2, d = h3, e = h4;
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d), k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d, k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d, k = 0xCA62C1D6;
      }
      uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rotl(b, 30), b = a, a = t;
    }
    h0 += a, h1 += b, h2 += c, h3 += d, h4 += e;
  }
  uint8_t dig[20];
  uint32_t hs[5] = {h0, h1, h2, h3, h4};
  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 4; j++) {
      dig[4 * i + j] = uint8_t(hs[i] >> (24 - 8 * j));
    }
  }
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (int i = 0; i < 20; i += 3) {
    uint32_t v = uint32_t(dig[i]) << 16 | (i + 1 < 20 ? uint32_t(dig[i + 1]) << 8 : 0) |
                 (i + 2 < 20 ? dig[i + 2] : 0);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < 20 ? tbl[(v >> 6) & 63] : '=';
    out += i + 2 < 20 ? tbl[v & 63] : '=';
  }
  return out;
}

// ---------------------------------------------------------------- connection handling
struct Conn {
  int fd;
  std::string in;

  bool fill() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      in.append(buf, size_t(n));
      return true;
    }
  }
  bool sendAll(const std::string& s) { return sendAll(s.data(), s.size()); }
  bool sendAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w <= 0) {
        return false;
      }
      p += w;
      n -= size_t(w);
    }
    return true;
  }
  // Reads until `delim`; returns the position after it, or npos at EOF or past `limit`.
  size_t waitFor(const std::string& delim, size_t limit = kMaxHeadBytes) {
    for (;;) {
      size_t p = in.find(delim);
      if (p != std::string::npos) {
        return p + delim.size();
      }
      if (in.size() > limit || !fill()) {
        return std::string::npos;
      }
    }
  }
  bool need(size_t n) {
    while (in.size() < n) {
      if (!fill()) {
        return false;
      }
    }
    return true;
  }
  // Hashes the next n body bytes without keeping them.
  bool consume(uint64_t n, Sha256& sha, uint64_t& total) {
    while (n > 0) {
      if (in.empty() && !fill()) {
        return false;
      }
      size_t take = size_t(std::min<uint64_t>(n, in.size()));
      sha.update(in.data(), take);
      total += take;
      in.erase(0, take);
      n -= take;
    }
    return true;
  }
};

// Counts a value up for the lifetime of a scope.
struct Gauge {
  std::atomic<uint64_t>& g;
  explicit Gauge(std::atomic<uint64_t>& gauge) : g(gauge) { g++; }
  ~Gauge() { g--; }
};

std::string lower(std::string s) {
  for (auto& c : s) {
    c = char(tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) {
    return "";
  }
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      snprintf(b, sizeof(b), "\\u%04x", c);
      o += b;
    } else {
      o += char(c);
    }
  }
  return o;
}

std::string urlDecode(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      o += char(strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      o += ' ';
    } else {
      o += s[i];
    }
  }
  return o;
}

// Every value of `key` in the query string, percent-decoded.
std::vector<std::string> queryParams(const std::string& target, const std::string& key) {
  std::vector<std::string> out;
  size_t q = target.find('?');
  if (q == std::string::npos) {
    return out;
  }
  std::string qs = target.substr(q + 1);
  size_t pos = 0;
  for (;;) {
    size_t amp = qs.find('&', pos);
    std::string kv = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (urlDecode(kv.substr(0, eq)) == key) {
      out.push_back(eq == std::string::npos ? "" : urlDecode(kv.substr(eq + 1)));
    }
    if (amp == std::string::npos) {
      break;
    }
    pos = amp + 1;
  }
  return out;
}

std::string queryParam(const std::string& target, const std::string& key) {
  auto all = queryParams(target, key);
  return all.empty() ? "" : all.front();
}

uint64_t queryNumber(const std::string& target, const std::string& key, uint64_t dflt) {
  std::string v = queryParam(target, key);
  return v.empty() ? dflt : strtoull(v.c_str(), nullptr, 10);
}

const char* reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 417:
    return "Expectation Failed";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

std::string statusLine(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
}

// 1xx, 204 and 304 never carry content (RFC 9110 §6.4.1).
bool bodyless(int status) {
  return status < 200 || status == 204 || status == 304;
}

void respond(Conn& c, int status, const std::string& body, const HeaderList& extra, bool head_only,
             bool close) {
  std::string r = statusLine(status);
  r += "x-upstream-name: " + g_name + "\r\n";
  for (const auto& [k, v] : extra) {
    r += k + ": " + v + "\r\n";
  }
  if (!bodyless(status)) {
    r += "content-length: " + std::to_string(body.size()) + "\r\n";
  }
  if (close) {
    r += "connection: close\r\n";
  }
  r += "\r\n";
  if (!head_only && !bodyless(status)) {
    r += body;
  }
  c.sendAll(r);
}

int healthStatus() {
  if (!g_health_file.empty()) {
    FILE* f = fopen(g_health_file.c_str(), "r");
    if (f == nullptr) {
      return 503;
    }
    int st = 0;
    bool parsed = fscanf(f, "%d", &st) == 1;
    fclose(f);
    return parsed && st >= 200 && st <= 599 ? st : 200;
  }
  return g_health_status.load();
}

// The deterministic /bytes pattern: byte i is 'a' + i % 26.
struct Pattern {
  std::string block;
  Pattern() {
    block.resize(65536 + 26);
    for (size_t i = 0; i < block.size(); i++) {
      block[i] = char('a' + i % 26);
    }
  }
  // Up to 65536 bytes of the pattern starting at body offset `off`.
  const char* at(uint64_t off) const { return block.data() + off % 26; }
};

const Pattern& pattern() {
  static const Pattern p;
  return p;
}

std::string patternSha(uint64_t n) {
  Sha256 sha;
  for (uint64_t off = 0; off < n;) {
    size_t take = size_t(std::min<uint64_t>(65536, n - off));
    sha.update(pattern().at(off), take);
    off += take;
  }
  return sha.hex();
}

struct Request {
  std::string method;
  std::string target;
  std::string path;
  std::string version;
  HeaderList headers;
  HeaderList trailers;
  uint64_t body_len = 0;
  std::string body_sha256;

  std::string get(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (lower(k) == name) {
        return v;
      }
    }
    return "";
  }
  bool has(const std::string& name) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& h) { return lower(h.first) == name; });
  }
};

enum class ReadResult { Ok, Closed, Bad };

ReadResult readHead(Conn& c, Request& req) {
  // Tolerate empty lines between pipelined requests (RFC 9112 §2.2).
  while (c.in.rfind("\r\n", 0) == 0 || (c.in.empty() && c.fill())) {
    if (c.in.rfind("\r\n", 0) == 0) {
      c.in.erase(0, 2);
    }
  }
  size_t end = c.waitFor("\r\n\r\n");
  if (end == std::string::npos) {
    return c.in.size() > kMaxHeadBytes ? ReadResult::Bad : ReadResult::Closed;
  }
  std::string head = c.in.substr(0, end);
  c.in.erase(0, end);
  size_t line_end = head.find("\r\n");
  std::string line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) {
    return ReadResult::Bad;
  }
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = line.substr(sp2 + 1);
  req.path = req.target.substr(0, req.target.find('?'));
  if (req.version.rfind("HTTP/1.", 0) != 0) {
    return ReadResult::Bad;
  }
  size_t pos = line_end + 2;
  while (pos + 2 < head.size()) {
    size_t e = head.find("\r\n", pos);
    std::string h = head.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      return ReadResult::Bad;
    }
    req.headers.emplace_back(h.substr(0, colon), trim(h.substr(colon + 1)));
    pos = e + 2;
  }
  return ReadResult::Ok;
}

ReadResult readBody(Conn& c, Request& req) {
  Sha256 sha;
  std::string te = lower(req.get("transfer-encoding"));
  if (!te.empty()) {
    if (te.size() < 7 || te.compare(te.size() - 7, 7, "chunked") != 0) {
      return ReadResult::Bad;
    }
    for (;;) {
      size_t le = c.waitFor("\r\n", 4096);
      if (le == std::string::npos) {
        return ReadResult::Closed;
      }
      // Chunk extensions (";name=value") follow the size and are ignored.
      char* endp = nullptr;
      uint64_t n = strtoull(c.in.c_str(), &endp, 16);
      if (endp == c.in.c_str()) {
        return ReadResult::Bad;
      }
      c.in.erase(0, le);
      if (n == 0) {
        for (;;) {
          size_t tl = c.waitFor("\r\n");
          if (tl == std::string::npos) {
            return ReadResult::Closed;
          }
          std::string t = c.in.substr(0, tl - 2);
          c.in.erase(0, tl);
          if (t.empty()) {
            break;
          }
          size_t colon = t.find(':');
          if (colon != std::string::npos) {
            req.trailers.emplace_back(t.substr(0, colon), trim(t.substr(colon + 1)));
          }
        }
        break;
      }
      if (!c.consume(n, sha, req.body_len) || !c.need(2)) {
        return ReadResult::Closed;
      }
      c.in.erase(0, 2);
    }
  } else if (req.has("content-length")) {
    std::string cl = req.get("content-length");
    char* endp = nullptr;
    uint64_t n = strtoull(cl.c_str(), &endp, 10);
    if (cl.empty() || *endp != '\0') {
      return ReadResult::Bad;
    }
    if (!c.consume(n, sha, req.body_len)) {
      return ReadResult::Closed;
    }
  }
  req.body_sha256 = sha.hex();
  return ReadResult::Ok;
}

std::string echoJson(const Request& req) {
  auto list = [](const HeaderList& hs) {
    std::string s = "[";
    for (size_t i = 0; i < hs.size(); i++) {
      s += std::string(i ? ",\n    " : "\n    ") + "[\"" + jsonEscape(hs[i].first) + "\", \"" +
           jsonEscape(hs[i].second) + "\"]";
    }
    return s + (hs.empty() ? "]" : "\n  ]");
  };
  return "{\n  \"name\": \"" + jsonEscape(g_name) + "\",\n  \"method\": \"" +
         jsonEscape(req.method) + "\",\n  \"path\": \"" + jsonEscape(req.target) +
         "\",\n  \"version\": \"" + jsonEscape(req.version) +
         "\",\n  \"headers\": " + list(req.headers) + ",\n  \"trailers\": " + list(req.trailers) +
         ",\n  \"body_len\": " + std::to_string(req.body_len) + ",\n  \"body_sha256\": \"" +
         req.body_sha256 + "\"\n}\n";
}

void sendBytes(Conn& c, const Request& req, bool head_only, bool close) {
  uint64_t n = queryNumber(req.target, "n", 0);
  bool chunked = queryParam(req.target, "chunked") == "1";
  std::string r = statusLine(200) + "x-upstream-name: " + g_name +
                  "\r\ncontent-type: application/octet-stream\r\nx-body-sha256: " + patternSha(n) +
                  "\r\n" +
                  (chunked ? std::string("transfer-encoding: chunked\r\n")
                           : "content-length: " + std::to_string(n) + "\r\n") +
                  (close ? "connection: close\r\n" : "") + "\r\n";
  if (!c.sendAll(r) || head_only) {
    return;
  }
  for (uint64_t off = 0; off < n;) {
    // Uneven chunk sizes, so a proxy cannot rely on chunk boundaries lining up with reads.
    size_t take = size_t(std::min<uint64_t>(chunked ? 8192 + off % 1000 : 65536, n - off));
    if (chunked) {
      char hdr[32];
      snprintf(hdr, sizeof(hdr), "%zx\r\n", take);
      if (!c.sendAll(hdr)) {
        return;
      }
    }
    if (!c.sendAll(pattern().at(off), take) || (chunked && !c.sendAll("\r\n"))) {
      return;
    }
    off += take;
  }
  if (chunked) {
    c.sendAll("0\r\n\r\n");
  }
}

void sendTrailers(Conn& c, bool head_only, bool close) {
  std::string r = statusLine(200) + "x-upstream-name: " + g_name +
                  "\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n" +
                  (close ? "connection: close\r\n" : "") + "\r\n";
  if (!c.sendAll(r) || head_only) {
    return;
  }
  c.sendAll("e\r\nwith trailers\n\r\n0\r\nx-upstream-trailer: 1\r\n\r\n");
}

void sendDrip(Conn& c, const Request& req, bool head_only, bool close) {
  uint64_t n = queryNumber(req.target, "n", 5);
  uint64_t ms = queryNumber(req.target, "ms", 100);
  std::string r = statusLine(200) + "x-upstream-name: " + g_name +
                  "\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n" +
                  (close ? "connection: close\r\n" : "") + "\r\n";
  if (!c.sendAll(r) || head_only) {
    return;
  }
  for (uint64_t i = 0; i < n; i++) {
    if (i > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    std::string piece = "piece " + std::to_string(i) + "\n";
    char hdr[32];
    snprintf(hdr, sizeof(hdr), "%zx\r\n", piece.size());
    if (!c.sendAll(hdr + piece + "\r\n")) {
      return;
    }
  }
  c.sendAll("0\r\n\r\n");
}

void sendSlowHeaders(Conn& c, const Request& req, bool head_only, bool close) {
  uint64_t ms = queryNumber(req.target, "ms", 200);
  std::vector<std::string> lines = {statusLine(200),   "x-upstream-name: " + g_name + "\r\n",
                                    "x-slow-1: a\r\n", "x-slow-2: b\r\n",
                                    "x-slow-3: c\r\n", "content-length: 5\r\n"};
  if (close) {
    lines.push_back("connection: close\r\n");
  }
  for (const auto& l : lines) {
    if (!c.sendAll(l)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  c.sendAll(head_only ? "\r\n" : "\r\nslow\n");
}

// WebSocket-style upgrade: 101 with the RFC 6455 accept key, then a raw byte echo.
void serveWebSocket(Conn& c, const Request& req) {
  std::string key = req.get("sec-websocket-key");
  if (lower(req.get("upgrade")) != "websocket" ||
      lower(req.get("connection")).find("upgrade") == std::string::npos || key.empty()) {
    respond(c, 400, "websocket upgrade expected\n", {}, false, true);
    return;
  }
  std::string accept = sha1Base64(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  if (!c.sendAll(statusLine(101) +
                 "upgrade: websocket\r\nconnection: Upgrade\r\n"
                 "sec-websocket-accept: " +
                 accept + "\r\nx-upstream-name: " + g_name + "\r\n\r\n")) {
    return;
  }
  if (!c.in.empty() && !c.sendAll(c.in)) {
    return;
  }
  c.in.clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0 || !c.sendAll(buf, size_t(n))) {
      break;
    }
  }
  // Pass the close on as a FIN so the tunnel's other side sees the end too.
  shutdown(c.fd, SHUT_WR);
}

// Serves one request; returns false when the connection must close afterwards.
bool serveOne(Conn& c, const Request& req) {
  const std::string& path = req.path;
  bool head_only = req.method == "HEAD";
  std::string conn_hdr = lower(req.get("connection"));
  bool keep_alive = req.version == "HTTP/1.1" ? conn_hdr.find("close") == std::string::npos
                                              : conn_hdr.find("keep-alive") != std::string::npos;
  bool close = !keep_alive;

  if (g_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(g_delay_ms));
  }
  if (g_force_status > 0 && path != "/healthz" && path != "/stats" &&
      path.rfind("/control/", 0) != 0) {
    respond(c, g_force_status, "forced " + std::to_string(g_force_status) + "\n",
            {{"content-type", "text/plain"}}, head_only, close);
    return !close;
  }
  if (path == "/reset") {
    struct linger lg = {1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return false;
  }
  if (path == "/no-response") {
    while (c.fill()) {
      c.in.clear();
    }
    return false;
  }
  if (path == "/garbage") {
    c.sendAll("this is not http\r\n\r\n");
    return false;
  }
  if (path == "/close-mid-body") {
    c.sendAll(statusLine(200) + "x-upstream-name: " + g_name + "\r\ncontent-length: 1000\r\n\r\n" +
              std::string(100, 'x'));
    return false;
  }
  if (path == "/ws") {
    serveWebSocket(c, req);
    return false;
  }
  if (path == "/healthz") {
    int st = healthStatus();
    respond(c, st, st < 300 ? "ok\n" : "unhealthy\n", {}, head_only, close);
  } else if (path == "/control/health") {
    int st = int(queryNumber(req.target, "status", 200));
    if (st < 200 || st > 599) {
      respond(c, 400, "status must be 200..599\n", {}, head_only, close);
    } else {
      g_health_status = st;
      respond(c, 200, "healthz now answers " + std::to_string(st) + "\n", {}, head_only, close);
    }
  } else if (path == "/count") {
    respond(c, 200, std::to_string(g_requests.load()) + "\n", {}, head_only, close);
  } else if (path == "/stats") {
    std::string json = "{\"requests\": " + std::to_string(g_requests.load()) +
                       ", \"connections_open\": " + std::to_string(g_connections_open.load()) +
                       ", \"connections_total\": " + std::to_string(g_connections_total.load()) +
                       ", \"in_flight\": " + std::to_string(g_in_flight.load()) + "}\n";
    respond(c, 200, json, {{"content-type", "application/json"}}, head_only, close);
  } else if (path.rfind("/status/", 0) == 0) {
    int st = atoi(path.c_str() + 8);
    if (st < 200 || st > 599) {
      st = 500;
    }
    respond(c, st, "status " + std::to_string(st) + "\n", {{"content-type", "text/plain"}},
            head_only, close);
  } else if (path == "/delay") {
    uint64_t ms = queryNumber(req.target, "ms", 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    respond(c, 200, "delayed " + std::to_string(ms) + "\n", {{"content-type", "text/plain"}},
            head_only, close);
  } else if (path == "/bytes") {
    sendBytes(c, req, head_only, close);
  } else if (path == "/drip") {
    sendDrip(c, req, head_only, close);
  } else if (path == "/trailers") {
    sendTrailers(c, head_only, close);
  } else if (path == "/slow-headers") {
    sendSlowHeaders(c, req, head_only, close);
  } else if (path == "/close") {
    respond(c, 200, "closing\n", {{"content-type", "text/plain"}}, head_only, true);
    return false;
  } else {
    HeaderList extra = {{"content-type", "application/json"}};
    if (path == "/response-headers") {
      for (const auto& h : queryParams(req.target, "h")) {
        size_t colon = h.find(':');
        if (colon != std::string::npos && colon > 0) {
          extra.emplace_back(h.substr(0, colon), trim(h.substr(colon + 1)));
          if (lower(h.substr(0, colon)) == "connection" &&
              lower(h).find("close") != std::string::npos) {
            close = true;
          }
        }
      }
    }
    // Avoid a second connection header from respond() when the caller set one.
    bool own_close = close && std::none_of(extra.begin(), extra.end(), [](const auto& h) {
                       return lower(h.first) == "connection";
                     });
    respond(c, 200, echoJson(req), extra, head_only, own_close);
  }
  return !close;
}

void serve(int fd) {
  Gauge open(g_connections_open);
  g_connections_total++;
  Conn c{fd, {}};
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (;;) {
    Request req;
    ReadResult r = readHead(c, req);
    if (r == ReadResult::Bad) {
      respond(c, 400, "bad request\n", {}, false, true);
      break;
    }
    if (r == ReadResult::Closed) {
      break;
    }
    Gauge in_flight(g_in_flight);
    g_requests++;
    if (lower(req.get("expect")) == "100-continue" && req.version == "HTTP/1.1") {
      c.sendAll(statusLine(100) + "\r\n");
    }
    r = readBody(c, req);
    if (r == ReadResult::Bad) {
      respond(c, 400, "bad request body framing\n", {}, false, true);
      break;
    }
    if (r == ReadResult::Closed || !serveOne(c, req)) {
      break;
    }
  }
  close(fd);
}

void usage(FILE* out) {
  fprintf(out,
          "usage: sluice-test-upstream [--listen IP:PORT] [--name NAME]\n"
          "                            [--delay-ms N] [--status N] [--health-status N]\n"
          "                            [--health-file PATH]\n"
          "\n"
          "A controllable HTTP/1.1 origin for sluice's tests and quickstart. Prints\n"
          "\"listening IP:PORT\" once bound (port 0 picks a free one).\n"
          "\n"
          "  --listen IP:PORT     address to bind (default 127.0.0.1:0; [::1]:PORT for IPv6)\n"
          "  --name NAME          sent as x-upstream-name and in the echo JSON (default upstream)\n"
          "  --delay-ms N         wait N ms before every answer (default 0)\n"
          "  --status N           answer every request but /healthz, /stats, /control/* with N\n"
          "  --health-status N    what /healthz answers (default 200)\n"
          "  --health-file PATH   /healthz answers 503 while PATH is missing, else the status\n"
          "                       written in it (200 if empty)\n"
          "\n"
          "Endpoints:\n"
          "  /echo, any other path     200, JSON describing the request (headers in wire order,\n"
          "                            body length and sha256)\n"
          "  /status/NNN               that status\n"
          "  /delay?ms=N               answer after N ms\n"
          "  /bytes?n=N[&chunked=1]    N bytes of 'a'+i%%26, with x-body-sha256\n"
          "  /drip?n=N&ms=M            chunked, N small pieces one every M ms\n"
          "  /slow-headers?ms=M        the response head one line every M ms\n"
          "  /response-headers?h=N:V   the echo JSON with extra response headers\n"
          "  /close                    200 with connection: close\n"
          "  /close-mid-body           content-length 1000, 100 bytes, close\n"
          "  /reset                    TCP RST after reading the request\n"
          "  /no-response              never answer\n"
          "  /garbage                  a non-HTTP answer, then close\n"
          "  /ws                       WebSocket upgrade (101), then echo raw bytes\n"
          "  /healthz                  health status; /control/health?status=N changes it\n"
          "  /count                    requests served so far\n"
          "  /stats                    requests, connections_open, connections_total, in_flight\n");
}

} // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--listen" && has_value) {
      listen = argv[++i];
    } else if (a == "--name" && has_value) {
      g_name = argv[++i];
    } else if (a == "--health-status" && has_value) {
      int st = atoi(argv[++i]);
      if (st < 200 || st > 599) {
        fprintf(stderr, "--health-status must be 200..599\n");
        return 1;
      }
      g_health_status = st;
    } else if (a == "--status" && has_value) {
      g_force_status = atoi(argv[++i]);
      if (g_force_status != 0 && (g_force_status < 200 || g_force_status > 599)) {
        fprintf(stderr, "--status must be 200..599 (or 0: off)\n");
        return 1;
      }
    } else if (a == "--delay-ms" && has_value) {
      g_delay_ms = std::max(0, atoi(argv[++i]));
    } else if (a == "--health-file" && has_value) {
      g_health_file = argv[++i];
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "unknown or incomplete argument: %s\n", a.c_str());
      usage(stderr);
      return 1;
    }
  }
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    fprintf(stderr, "--listen expects IP:PORT, got %s\n", listen.c_str());
    return 1;
  }
  std::string ip = listen.substr(0, colon);
  bool v6 = ip.size() >= 2 && ip.front() == '[' && ip.back() == ']';
  if (v6) {
    ip = ip.substr(1, ip.size() - 2);
  }
  int port = atoi(listen.c_str() + colon + 1);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(uint16_t(port));
    len = sizeof(*a6);
    if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) != 1) {
      fprintf(stderr, "bad IPv6 address %s\n", ip.c_str());
      return 1;
    }
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(uint16_t(port));
    len = sizeof(*a4);
    if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) != 1) {
      fprintf(stderr, "bad IPv4 address %s\n", ip.c_str());
      return 1;
    }
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", listen.c_str(), strerror(errno));
    return 2;
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  int bound = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  printf(v6 ? "listening [%s]:%d\n" : "listening %s:%d\n", ip.c_str(), bound);
  fflush(stdout);
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int cfd = accept(fd, nullptr, nullptr);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        continue;
      }
      break;
    }
    std::thread(serve, cfd).detach();
  }
  return 0;
}
