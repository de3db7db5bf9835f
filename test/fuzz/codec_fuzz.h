#pragma once

// Shared driver of the two codec targets: the bytes are fed to a Parser the way the server's
// connection (requests) and the upstream pool (responses) feed it, in reads of a size the first
// byte picks, through parseStep. Every view of a completed head is read, so a view that points
// outside the head buffer is an ASan finding.

#include "core/http/codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::fuzz {

struct CountingSink : http::BodySink {
  size_t bytes = 0;
  unsigned char last = 0;
  void onBodyData(std::string_view d) override {
    bytes += d.size();
    if (!d.empty()) {
      last = static_cast<unsigned char>(d.back());
    }
  }
};

inline size_t touch(std::string_view s) {
  size_t h = s.size();
  for (char c : s) {
    h = h * 31 + static_cast<unsigned char>(c);
  }
  return h;
}

inline size_t touchHead(const http::MessageHead& h) {
  size_t acc = touch(h.method) + touch(h.target) + h.status + h.content_length;
  for (const auto& e : h.headers.entries()) {
    acc += touch(e.name) + touch(e.value);
  }
  for (const auto& e : h.trailers.entries()) {
    acc += touch(e.name) + touch(e.value);
  }
  acc += h.headers.count("host") + (h.headers.find("transfer-encoding") != nullptr);
  return acc;
}

inline void runCodec(http::MessageType type, const uint8_t* data, size_t size) {
  if (size < 2) {
    return;
  }
  // Byte 0: read size (1..128, 0 = everything at once). Byte 1: flags (response side: the
  // request was a HEAD; both: a small head limit).
  size_t step = data[0] & 0x7f;
  bool head_request = (data[1] & 1) != 0;
  uint64_t max_head = (data[1] & 2) != 0 ? 256 : 65536;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (step == 0) {
    step = input.size() == 0 ? 1 : input.size();
  }

  http::Arena arena;
  http::Parser parser(type, arena, max_head);
  CountingSink sink;
  parser.setBodySink(&sink);
  parser.setExpectNoBody(type == http::MessageType::Response && head_request);
  network::Buffer in;
  network::Buffer head_buf;
  volatile size_t sink_acc = 0;
  bool need_resume = false;
  size_t pos = 0;
  size_t messages = 0;
  while (pos < input.size()) {
    size_t n = std::min(step, input.size() - pos);
    in.append(input.substr(pos, n));
    pos += n;
    while (!in.empty()) {
      if (need_resume) {
        parser.resume();
        need_resume = false;
        arena.reset();
      }
      bool head_ready = false;
      http::ParseEvent ev = http::parseStep(parser, in, head_buf, &head_ready);
      if (ev == http::ParseEvent::Error) {
        sink_acc = sink_acc + touch(parser.errorReason() ? parser.errorReason() : "");
        return;
      }
      if (head_ready) {
        sink_acc = sink_acc + touchHead(parser.head());
      }
      if (ev == http::ParseEvent::HeadComplete) {
        parser.resume();
        continue;
      }
      if (ev == http::ParseEvent::MessageComplete) {
        sink_acc = sink_acc + touchHead(parser.head());
        need_resume = true;
        if (parser.head().upgrade || ++messages > 64) {
          return;
        }
        continue;
      }
      if (ev == http::ParseEvent::Upgrade) {
        return;
      }
      break; // NeedMore
    }
  }
  if (type == http::MessageType::Response && !need_resume) {
    // The upstream closed: a read-until-close body ends here.
    if (parser.finish()) {
      sink_acc = sink_acc + touchHead(parser.head());
    }
  }
  (void)sink_acc;
}

} // namespace sluice::fuzz
