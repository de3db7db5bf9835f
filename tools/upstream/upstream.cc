// sluice-test-upstream: a controllable HTTP/1.1 origin for integration tests and the
// quickstart demo. One thread per connection, plain POSIX sockets, no dependencies.
//
//   /echo (and any other path)  200, JSON: name, method, path, headers, body_len, body_sha256
//   /status/NNN                 that status
//   /delay?ms=N                 answer after N ms
//   /bytes?n=N[&chunked=1]      N bytes ('a' + i % 26), x-body-sha256 header
//   /close-mid-body             Content-Length 1000, 100 bytes, close
//   /reset                      RST right after reading the request
//   /no-response                read the request, never answer
//   /garbage                    a non-HTTP answer, then close
//   /ws                         101 for a WebSocket upgrade, then echo raw bytes
//   /healthz                    200 "ok"
//   /count                      requests served so far

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string g_name = "upstream";
int g_delay_ms = 0;  // added to every response (a slow endpoint)
std::atomic<uint64_t> g_count{0};

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
  bool closed = false;

  bool fill() {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      closed = true;
      return false;
    }
    in.append(buf, size_t(n));
    return true;
  }
  bool sendAll(const std::string& s) { return sendAll(s.data(), s.size()); }
  bool sendAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) {
        return false;
      }
      p += w;
      n -= size_t(w);
    }
    return true;
  }
  // Reads until `delim`; returns the position after it, or npos at EOF.
  size_t waitFor(const std::string& delim, size_t from = 0) {
    for (;;) {
      size_t p = in.find(delim, from);
      if (p != std::string::npos) {
        return p + delim.size();
      }
      if (!fill()) {
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
};

std::string lower(std::string s) {
  for (auto& c : s) {
    c = char(tolower(static_cast<unsigned char>(c)));
  }
  return s;
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

std::string queryParam(const std::string& target, const std::string& key) {
  size_t q = target.find('?');
  if (q == std::string::npos) {
    return "";
  }
  std::string qs = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= qs.size()) {
    size_t amp = qs.find('&', pos);
    std::string kv = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      return eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
    if (amp == std::string::npos) {
      break;
    }
    pos = amp + 1;
  }
  return "";
}

void respond(Conn& c, int status, const std::string& body,
             const std::vector<std::pair<std::string, std::string>>& extra, bool head_only,
             bool close) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\n";
  r += "x-upstream-name: " + g_name + "\r\n";
  for (auto& [k, v] : extra) {
    r += k + ": " + v + "\r\n";
  }
  r += "content-length: " + std::to_string(body.size()) + "\r\n";
  if (close) {
    r += "connection: close\r\n";
  }
  r += "\r\n";
  if (!head_only) {
    r += body;
  }
  c.sendAll(r);
}

void serve(int fd) {
  Conn c{fd, {}, false};
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (;;) {
    size_t end = c.waitFor("\r\n\r\n");
    if (end == std::string::npos) {
      break;
    }
    std::string head = c.in.substr(0, end);
    c.in.erase(0, end);
    size_t line_end = head.find("\r\n");
    std::string line = head.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) {
      break;
    }
    std::string method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    std::vector<std::pair<std::string, std::string>> headers;
    size_t pos = line_end + 2;
    while (pos < head.size() - 2) {
      size_t e = head.find("\r\n", pos);
      std::string h = head.substr(pos, e - pos);
      size_t colon = h.find(':');
      if (colon != std::string::npos) {
        std::string v = h.substr(colon + 1);
        while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) {
          v.erase(0, 1);
        }
        headers.emplace_back(h.substr(0, colon), v);
      }
      pos = e + 2;
    }
    auto get = [&](const std::string& n) -> std::string {
      for (auto& [k, v] : headers) {
        if (lower(k) == n) {
          return v;
        }
      }
      return "";
    };
    g_count++;
    std::string path = target.substr(0, target.find('?'));
    bool keep_alive = lower(get("connection")).find("close") == std::string::npos &&
                      version == "HTTP/1.1";
    if (lower(get("expect")) == "100-continue") {
      c.sendAll("HTTP/1.1 100 Continue\r\n\r\n");
    }
    // Body: read and hash, never stored.
    Sha256 sha;
    uint64_t body_len = 0;
    std::string te = lower(get("transfer-encoding"));
    if (te.find("chunked") != std::string::npos) {
      for (;;) {
        size_t le = c.waitFor("\r\n");
        if (le == std::string::npos) {
          return void(close(fd));
        }
        uint64_t n = strtoull(c.in.c_str(), nullptr, 16);
        c.in.erase(0, le);
        if (n == 0) {
          // trailers until an empty line
          for (;;) {
            size_t te_end = c.waitFor("\r\n");
            if (te_end == std::string::npos) {
              return void(close(fd));
            }
            bool empty = te_end == 2;
            c.in.erase(0, te_end);
            if (empty) {
              break;
            }
          }
          break;
        }
        while (n > 0) {
          if (c.in.empty() && !c.fill()) {
            return void(close(fd));
          }
          size_t take = size_t(std::min<uint64_t>(n, c.in.size()));
          sha.update(c.in.data(), take);
          body_len += take;
          c.in.erase(0, take);
          n -= take;
        }
        if (!c.need(2)) {
          return void(close(fd));
        }
        c.in.erase(0, 2);
      }
    } else if (!get("content-length").empty()) {
      uint64_t n = strtoull(get("content-length").c_str(), nullptr, 10);
      while (n > 0) {
        if (c.in.empty() && !c.fill()) {
          return void(close(fd));
        }
        size_t take = size_t(std::min<uint64_t>(n, c.in.size()));
        sha.update(c.in.data(), take);
        body_len += take;
        c.in.erase(0, take);
        n -= take;
      }
    }
    bool head_only = method == "HEAD";
    if (g_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(g_delay_ms));
    }
    if (path == "/reset") {
      struct linger lg = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      break;
    }
    if (path == "/no-response") {
      while (c.fill()) {
      }
      break;
    }
    if (path == "/garbage") {
      c.sendAll("this is not http\r\n\r\n");
      break;
    }
    if (path == "/close-mid-body") {
      c.sendAll("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + std::string(100, 'x'));
      break;
    }
    if (path == "/healthz") {
      respond(c, 200, "ok\n", {}, head_only, !keep_alive);
    } else if (path == "/count") {
      respond(c, 200, std::to_string(g_count.load()) + "\n", {}, head_only, !keep_alive);
    } else if (path.rfind("/status/", 0) == 0) {
      int st = atoi(path.c_str() + 8);
      if (st < 200 || st > 599) {
        st = 500;
      }
      respond(c, st, "status " + std::to_string(st) + "\n", {}, head_only, !keep_alive);
    } else if (path == "/delay") {
      int ms = atoi(queryParam(target, "ms").c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      respond(c, 200, "delayed " + std::to_string(ms) + "\n", {}, head_only, !keep_alive);
    } else if (path == "/bytes") {
      uint64_t n = strtoull(queryParam(target, "n").c_str(), nullptr, 10);
      bool chunked = queryParam(target, "chunked") == "1";
      std::string body(n, 'a');
      for (uint64_t i = 0; i < n; i++) {
        body[i] = char('a' + i % 26);
      }
      Sha256 bs;
      bs.update(body.data(), body.size());
      std::string digest = bs.hex();
      if (!chunked) {
        respond(c, 200, body, {{"x-body-sha256", digest}}, head_only, !keep_alive);
      } else {
        std::string r = "HTTP/1.1 200 OK\r\nx-upstream-name: " + g_name +
                        "\r\ntransfer-encoding: chunked\r\nx-body-sha256: " + digest + "\r\n\r\n";
        c.sendAll(r);
        size_t off = 0;
        while (off < body.size()) {
          size_t take = std::min<size_t>(8192 + off % 1000, body.size() - off);
          char hdr[32];
          snprintf(hdr, sizeof(hdr), "%zx\r\n", take);
          c.sendAll(std::string(hdr) + body.substr(off, take) + "\r\n");
          off += take;
        }
        c.sendAll("0\r\n\r\n");
      }
    } else if (path == "/ws") {
      std::string key = get("sec-websocket-key");
      if (lower(get("upgrade")) != "websocket" || key.empty()) {
        respond(c, 400, "websocket upgrade expected\n", {}, head_only, true);
        break;
      }
      std::string accept = sha1Base64(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
      c.sendAll("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: " +
                accept + "\r\n\r\n");
      if (!c.in.empty()) {
        c.sendAll(c.in);
        c.in.clear();
      }
      char buf[65536];
      for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0 || !c.sendAll(buf, size_t(n))) {
          break;
        }
      }
      break;
    } else {
      std::string json = "{\"name\": \"" + jsonEscape(g_name) + "\", \"method\": \"" +
                         jsonEscape(method) + "\", \"path\": \"" + jsonEscape(target) +
                         "\", \"version\": \"" + jsonEscape(version) + "\", \"headers\": [";
      for (size_t i = 0; i < headers.size(); i++) {
        json += (i ? ", " : "") + std::string("[\"") + jsonEscape(headers[i].first) + "\", \"" +
                jsonEscape(headers[i].second) + "\"]";
      }
      json += "], \"body_len\": " + std::to_string(body_len) + ", \"body_sha256\": \"" + sha.hex() +
              "\"}\n";
      respond(c, 200, json, {{"content-type", "application/json"}}, head_only, !keep_alive);
    }
    if (!keep_alive) {
      break;
    }
  }
  close(fd);
}

} // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (a == "--name" && i + 1 < argc) {
      g_name = argv[++i];
    } else if (a == "--delay-ms" && i + 1 < argc) {
      g_delay_ms = atoi(argv[++i]);
    } else if (a == "--help" || a == "-h") {
      printf("usage: sluice-test-upstream [--listen IP:PORT] [--name NAME] [--delay-ms N]\n");
      return 0;
    } else {
      fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  size_t colon = listen.rfind(':');
  std::string ip = listen.substr(0, colon);
  int port = atoi(listen.c_str() + colon + 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 1024) != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", listen.c_str(), strerror(errno));
    return 2;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  printf("listening %s:%d\n", ip.c_str(), ntohs(addr.sin_port));
  fflush(stdout);
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int cfd = accept(fd, nullptr, nullptr);
    if (cfd < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    std::thread(serve, cfd).detach();
  }
  return 0;
}
