#pragma once

// HTTP/1.1 message parsing on llhttp (the only room that sees it). The parser works on a
// network::Buffer that the caller fills; header names and values become string views into that
// buffer (no copies). The parser pauses after each message head and after each message, so the
// caller can hand the head buffer to the stream and serve pipelined requests one at a time.

#include "core/http/header_map.h"
#include "core/network/buffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct llhttp__internal_s;

namespace sluice::http {

enum class MessageType { Request, Response };

struct MessageHead {
  explicit MessageHead(Arena& arena) : headers(arena), trailers(arena) {}
  void reset() {
    headers.clear();
    trailers.clear();
    method = {};
    target = {};
    status = 0;
    major = 1;
    minor = 1;
    keep_alive = true;
    chunked = false;
    has_content_length = false;
    content_length = 0;
    upgrade = false;
    no_body = false;
  }
  std::string_view method; // request
  std::string_view target; // request target as received
  uint32_t status = 0;     // response
  uint8_t major = 1;
  uint8_t minor = 1;
  bool keep_alive = true;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool upgrade = false; // request asks for / response grants an upgrade
  bool no_body = false; // message has no body (known after the head)
  HeaderMap headers;
  HeaderMap trailers;
};

enum class ParseEvent {
  NeedMore,        // every byte consumed, message not complete
  HeadComplete,    // a message head is ready in head(); call resume() to go on
  MessageComplete, // the message ended; call resume() before parsing the next
  Upgrade,         // head complete and the connection switches protocols; rest is raw bytes
  Error
};

enum class ParseError { None, BadRequest, HeadersTooLarge, BadResponse };

class BodySink {
public:
  virtual ~BodySink() = default;
  virtual void onBodyData(std::string_view data) = 0;
};

class Parser {
public:
  Parser(MessageType type, Arena& arena, uint64_t max_head_bytes);
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses readable bytes of `buf` starting at its read cursor. `consumed` is how many bytes
  // were parsed. Body bytes go to the sink as they are parsed.
  ParseEvent execute(network::Buffer& buf, size_t* consumed);
  void resume();
  MessageHead& head() { return head_; }
  bool inHead() const { return in_head_; }
  // True once per parsed head: the caller handles the head before the message's end.
  bool takeHeadReady() {
    bool r = head_ready_;
    head_ready_ = false;
    return r;
  }
  bool messageStarted() const { return started_; }
  ParseError error() const { return error_; }
  const char* errorReason() const;
  void setBodySink(BodySink* sink) { sink_ = sink; }
  // The limit on a head's bytes (a pooled parser serves listeners with different limits).
  void setMaxHeadBytes(uint64_t max_head_bytes) { max_head_bytes_ = max_head_bytes; }
  // For a response to HEAD (or a request that expects none): the next response has no body.
  void setExpectNoBody(bool v) { expect_no_body_ = v; }
  // The peer closed: returns true if that ends the current message cleanly (read-until-close
  // response bodies).
  bool finish();
  void reset();

private:
  struct Span {
    uint32_t off;
    uint32_t len;
  };
  struct RawHeader {
    Span name;
    Span value;
  };
  static int onMessageBegin(llhttp__internal_s* p);
  static int onUrl(llhttp__internal_s* p, const char* at, size_t len);
  static int onStatus(llhttp__internal_s* p, const char* at, size_t len);
  static int onHeaderField(llhttp__internal_s* p, const char* at, size_t len);
  static int onHeaderValue(llhttp__internal_s* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp__internal_s* p);
  static int onBody(llhttp__internal_s* p, const char* at, size_t len);
  static int onMessageComplete(llhttp__internal_s* p);
  void extend(Span& s, const char* at, size_t len);
  bool countTrailerBytes(size_t len);
  void buildHead();

  std::unique_ptr<llhttp__internal_s> parser_;
  MessageType type_;
  Arena& arena_;
  MessageHead head_;
  BodySink* sink_ = nullptr;
  uint64_t max_head_bytes_;
  uint64_t head_bytes_ = 0;
  uint64_t trailer_bytes_ = 0;
  size_t head_start_ = 0; // offset from base_ of the current message's first byte
  bool head_bytes_counted_ = false;
  const char* base_ = nullptr;
  Span url_{0, 0};
  std::vector<RawHeader> raw_;
  std::string trailer_field_;
  std::string trailer_value_;
  bool last_was_value_ = false;
  bool in_head_ = false;
  bool in_trailers_ = false;
  bool started_ = false;
  bool expect_no_body_ = false;
  bool head_ready_ = false;
  bool complete_ = false;
  bool bad_header_ = false;
  ParseError error_ = ParseError::None;
};

// Serialization helpers.
void appendStatusLine(network::Buffer& out, uint32_t status);
std::string_view reasonPhrase(uint32_t status);
void appendHeader(network::Buffer& out, std::string_view name, std::string_view value);
void appendChunk(network::Buffer& out, std::string_view data); // one chunk with framing
void appendLastChunk(network::Buffer& out, const HeaderMap* trailers);
void appendDecimal(network::Buffer& out, uint64_t v);

} // namespace sluice::http

namespace sluice::http {

// One parse step over `in`. When a head completes, the buffer that holds it becomes `head_buf`
// (a swap, no copy of the head) and the bytes after the head move to `in`. Consumed bytes are
// released, except while a head is still incomplete (its bytes must stay addressable).
ParseEvent parseStep(Parser& parser, network::Buffer& in, network::Buffer& head_buf,
                     bool* head_ready);

} // namespace sluice::http
