#pragma once

// A downstream connection for Streams driven in memory: collects what the stream writes and
// records how it ended.

#include "core/filter/stream.h"

#include <string>

namespace sluice::test {

struct FakeStreamOwner : filter::StreamOwner {
  network::Buffer out;
  bool done = false;
  bool closed = false;
  std::string peer = "127.0.0.1:5555";
  std::string ip = "127.0.0.1";
  network::Buffer& downstreamOut() override { return out; }
  void flushDownstream() override {}
  bool downstreamAboveHighWatermark() const override { return false; }
  void readDisableDownstream(bool) override {}
  void onStreamDone(bool close) override {
    done = true;
    closed = close;
  }
  void onTunnelStart(upstream::UpstreamConnection*) override {}
  void onTunnelData(std::string_view) override {}
  void onTunnelClosed() override {}
  const std::string& peerAddress() const override { return peer; }
  const std::string& peerIp() const override { return ip; }
};

} // namespace sluice::test
