#include "core/http/codec.h"

#include "core/http/status_codes.h"

#include <cstring>

#include <llhttp.h>

namespace sluice::http {

namespace {

// RFC 9110 tchar, as a table.
struct TcharTable {
  bool t[256] = {};
  constexpr TcharTable() {
    for (int c = '0'; c <= '9'; c++) {
      t[c] = true;
    }
    for (int c = 'a'; c <= 'z'; c++) {
      t[c] = true;
      t[c - 32] = true;
    }
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
      t[static_cast<unsigned char>(c)] = true;
    }
  }
  bool operator[](unsigned char c) const { return t[c]; }
};
constexpr TcharTable kTchar;

const llhttp_settings_t& settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    return st;
  }();
  return s;
}

// What llhttp (even in strict mode) lets through in a request head and a strict origin may read
// another way: a line ending that is a bare LF, obsolete line folding (a line starting with
// SP/HTAB, RFC 9112 §5.2) and a request line whose parts are not separated by exactly one SP
// (RFC 9112 §3). `p` spans the whole head, from the request line (after any empty lines) to
// its final CRLF CRLF.
bool validRequestHead(const char* p, size_t n) {
  const char* end = p + n;
  while (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
    p += 2;
  }
  const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
  if (lf == nullptr || lf == p || lf[-1] != '\r') {
    return false;
  }
  // The request line: METHOD SP request-target SP HTTP-version, no other whitespace.
  int spaces = 0;
  for (const char* q = p; q < lf - 1; q++) {
    if (*q == ' ') {
      if (q == p || q[-1] == ' ') {
        return false;
      }
      spaces++;
    } else if (*q == '\t' || *q == '\r') {
      return false;
    }
  }
  if (spaces != 2 || lf[-2] == ' ') {
    return false;
  }
  for (;;) {
    const char* next = lf + 1;
    if (next < end && (*next == ' ' || *next == '\t')) {
      return false; // obsolete line folding, or whitespace before the first field
    }
    lf = static_cast<const char*>(std::memchr(next, '\n', static_cast<size_t>(end - next)));
    if (lf == nullptr) {
      return true;
    }
    if (lf[-1] != '\r') {
      return false;
    }
  }
}

} // namespace

#define SELF(p) (static_cast<Parser*>((p)->data))

Parser::Parser(MessageType type, Arena& arena, uint64_t max_head_bytes)
    : parser_(std::make_unique<llhttp__internal_s>()), type_(type), arena_(arena), head_(arena),
      max_head_bytes_(max_head_bytes) {
  static llhttp_settings_t cbs = [] {
    llhttp_settings_t s = settings();
    s.on_message_begin = &Parser::onMessageBegin;
    s.on_url = &Parser::onUrl;
    s.on_status = &Parser::onStatus;
    s.on_header_field = &Parser::onHeaderField;
    s.on_header_value = &Parser::onHeaderValue;
    s.on_headers_complete = &Parser::onHeadersComplete;
    s.on_body = &Parser::onBody;
    s.on_message_complete = &Parser::onMessageComplete;
    return s;
  }();
  llhttp_init(parser_.get(), type == MessageType::Request ? HTTP_REQUEST : HTTP_RESPONSE, &cbs);
  parser_->data = this;
  raw_.reserve(32);
}

Parser::~Parser() = default;

void Parser::reset() {
  llhttp_reset(parser_.get());
  in_head_ = in_trailers_ = started_ = head_ready_ = complete_ = bad_header_ = false;
  error_ = ParseError::None;
  head_bytes_ = 0;
}

const char* Parser::errorReason() const {
  return llhttp_get_error_reason(parser_.get());
}

void Parser::extend(Span& s, const char* at, size_t len) {
  uint32_t off = static_cast<uint32_t>(at - base_);
  if (s.len == 0) {
    s.off = off;
    s.len = static_cast<uint32_t>(len);
  } else {
    // Pieces of one token are contiguous in the buffer (it is only appended to during a head).
    s.len = off + static_cast<uint32_t>(len) - s.off;
  }
}

int Parser::onMessageBegin(llhttp_t* p) {
  Parser* self = SELF(p);
  self->head_.reset();
  self->raw_.clear();
  self->url_ = {0, 0};
  self->last_was_value_ = false;
  self->in_head_ = true;
  self->in_trailers_ = false;
  self->started_ = true;
  self->bad_header_ = false;
  self->head_bytes_ = 0;
  self->head_bytes_counted_ = false;
  self->trailer_bytes_ = 0;
  return 0;
}

bool Parser::countTrailerBytes(size_t len) {
  // Trailers are a second header section: the same limit applies (they are kept in memory).
  trailer_bytes_ += len;
  if (max_head_bytes_ > 0 && trailer_bytes_ > max_head_bytes_) {
    error_ = ParseError::HeadersTooLarge;
    return false;
  }
  return true;
}

int Parser::onUrl(llhttp_t* p, const char* at, size_t len) {
  SELF(p)->extend(SELF(p)->url_, at, len);
  return 0;
}

int Parser::onStatus(llhttp_t*, const char*, size_t) {
  return 0;
}

int Parser::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  Parser* self = SELF(p);
  if (self->in_trailers_) {
    // A new field also costs its ": " and CRLF on the wire.
    bool new_field = self->last_was_value_ || self->trailer_field_.empty();
    if (!self->countTrailerBytes(len + (new_field ? 4 : 0))) {
      return -1;
    }
    if (self->last_was_value_) {
      self->head_.trailers.add(self->trailer_field_, self->trailer_value_);
      self->trailer_field_.clear();
      self->trailer_value_.clear();
    }
    self->trailer_field_.append(at, len);
    self->last_was_value_ = false;
    return 0;
  }
  if (self->last_was_value_ || self->raw_.empty()) {
    if (self->last_was_value_ || self->raw_.empty()) {
      self->raw_.push_back(RawHeader{{0, 0}, {0, 0}});
    }
  }
  self->extend(self->raw_.back().name, at, len);
  self->last_was_value_ = false;
  return 0;
}

int Parser::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  Parser* self = SELF(p);
  for (size_t i = 0; i < len; i++) {
    // Obsolete line folding and stray CR/LF/NUL inside a value are rejected (RFC 9112 §5.2).
    if (at[i] == '\r' || at[i] == '\n' || at[i] == '\0') {
      self->bad_header_ = true;
      return -1;
    }
  }
  if (self->in_trailers_) {
    if (!self->countTrailerBytes(len)) {
      return -1;
    }
    self->trailer_value_.append(at, len);
    self->last_was_value_ = true;
    return 0;
  }
  if (self->raw_.empty()) {
    return -1;
  }
  Span& v = self->raw_.back().value;
  if (v.len > 0) {
    // A second piece of one value: only a new read may separate the pieces, never a line
    // break (obsolete line folding, RFC 9112 §5.2).
    const char* prev_end = self->base_ + v.off + v.len;
    for (const char* q = prev_end; q < at; q++) {
      if (*q == '\n') {
        self->bad_header_ = true;
        return -1;
      }
    }
  }
  self->extend(v, at, len);
  self->last_was_value_ = true;
  return 0;
}

void Parser::buildHead() {
  head_.major = llhttp_get_http_major(parser_.get());
  head_.minor = llhttp_get_http_minor(parser_.get());
  if (type_ == MessageType::Request) {
    head_.method =
        llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(parser_.get())));
    head_.target = std::string_view(base_ + url_.off, url_.len);
  } else {
    head_.status = static_cast<uint32_t>(llhttp_get_status_code(parser_.get()));
  }
  for (const RawHeader& h : raw_) {
    // The field name must be followed directly by ':' (no whitespace before the colon).
    if (base_[h.name.off + h.name.len] != ':' || h.name.len == 0) {
      bad_header_ = true;
    }
    for (uint32_t i = 0; i < h.name.len; i++) {
      if (!kTchar[static_cast<unsigned char>(base_[h.name.off + i])]) {
        bad_header_ = true;
        break;
      }
    }
    std::string_view value(base_ + h.value.off, h.value.len);
    // Trailing whitespace of a field value is not part of it (llhttp keeps it).
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    head_.headers.addView(std::string_view(base_ + h.name.off, h.name.len), value);
  }
  uint64_t flags = parser_->flags;
  head_.chunked = (flags & F_CHUNKED) != 0;
  head_.has_content_length = (flags & F_CONTENT_LENGTH) != 0;
  head_.content_length = head_.has_content_length ? parser_->content_length : 0;
  head_.keep_alive = llhttp_should_keep_alive(parser_.get()) != 0;
  head_.upgrade = parser_->upgrade != 0;
}

int Parser::onHeadersComplete(llhttp_t* p) {
  Parser* self = SELF(p);
  self->buildHead();
  self->head_ready_ = true;
  self->in_head_ = false;
  self->in_trailers_ = true;
  self->last_was_value_ = false;
  MessageHead& h = self->head_;
  if (self->bad_header_) {
    return -1;
  }
  if (self->type_ == MessageType::Request) {
    // HTTP/1.0 and HTTP/1.1 only (llhttp also takes 0.9, 1.2, 2.0 and others).
    if (h.major != 1 || h.minor > 1) {
      return -1;
    }
    // Transfer-Encoding: exactly one field whose value is exactly `chunked`, on HTTP/1.1. Any
    // other coding would be dropped when sluice re-frames the body (the upstream would get
    // gzip bytes as plain), a last coding that is not chunked cannot be framed (RFC 9112
    // §6.3), and on HTTP/1.0 the framing is faulty (§6.1). The value must also be what llhttp
    // framed as chunked: a value it read otherwise (e.g. with a trailing tab) is refused rather
    // than read two ways.
    if (const HeaderEntry* te = h.headers.find("transfer-encoding")) {
      std::string_view v = te->value;
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
      }
      if (!iequals(v, "chunked") || h.headers.count("transfer-encoding") > 1 || !h.chunked ||
          h.minor == 0) {
        return -1;
      }
    }
    // The asterisk-form is for OPTIONS only (RFC 9112 §3.2.4).
    if (h.target == "*" && h.method != "OPTIONS") {
      return -1;
    }
    // RFC 9112 §3.2: a request without exactly one Host (HTTP/1.1) is a 400.
    size_t hosts = h.headers.count("host");
    if (hosts > 1 || (hosts == 0 && h.minor >= 1)) {
      self->bad_header_ = true;
      return -1;
    }
    h.no_body = !h.chunked && h.content_length == 0;
    if (h.upgrade) {
      return 2; // no body; the rest is the tunnel once the upstream agrees
    }
    return HPE_PAUSED;
  }
  uint32_t st = h.status;
  if (self->expect_no_body_ || st == 204 || st == 304 || (st >= 100 && st < 200)) {
    h.no_body = true;
    if (st == 101) {
      return 2;
    }
    return 1; // skip body; message complete follows at once
  }
  h.no_body = !h.chunked && h.has_content_length && h.content_length == 0;
  return HPE_PAUSED;
}

int Parser::onBody(llhttp_t* p, const char* at, size_t len) {
  Parser* self = SELF(p);
  if (self->sink_ != nullptr) {
    self->sink_->onBodyData(std::string_view(at, len));
  }
  return 0;
}

int Parser::onMessageComplete(llhttp_t* p) {
  Parser* self = SELF(p);
  if (self->in_trailers_ && !self->trailer_field_.empty()) {
    self->head_.trailers.add(self->trailer_field_, self->trailer_value_);
  }
  self->trailer_field_.clear();
  self->trailer_value_.clear();
  self->in_trailers_ = false;
  self->complete_ = true;
  self->started_ = false;
  return HPE_PAUSED;
}

ParseEvent Parser::execute(network::Buffer& buf, size_t* consumed) {
  base_ = buf.data();
  const char* start = buf.readPtr();
  size_t len = buf.readable();
  complete_ = false;
  if (!started_) {
    head_start_ = static_cast<size_t>(start - base_); // a new message starts here
  }
  llhttp_errno_t err = llhttp_execute(parser_.get(), start, len);
  const char* pos = err == HPE_OK ? start + len : llhttp_get_error_pos(parser_.get());
  *consumed = pos != nullptr ? static_cast<size_t>(pos - start) : len;
  // Bytes of the current head: everything parsed while a head was open, including the call
  // that completed it (parsing pauses right after a head).
  bool head_done_now = head_ready_ && head_bytes_counted_ == false;
  if (in_head_ || head_done_now) {
    head_bytes_ += *consumed;
    head_bytes_counted_ = !in_head_;
    if (max_head_bytes_ > 0 && head_bytes_ > max_head_bytes_) {
      error_ = ParseError::HeadersTooLarge;
      return ParseEvent::Error;
    }
    if (head_done_now && type_ == MessageType::Request &&
        !validRequestHead(base_ + head_start_,
                          static_cast<size_t>(start + *consumed - base_) - head_start_)) {
      error_ = ParseError::BadRequest;
      return ParseEvent::Error;
    }
  }
  switch (err) {
  case HPE_OK:
    return ParseEvent::NeedMore;
  case HPE_PAUSED:
    if (complete_) {
      return ParseEvent::MessageComplete;
    }
    return ParseEvent::HeadComplete;
  case HPE_PAUSED_UPGRADE:
    return ParseEvent::Upgrade;
  default:
    if (error_ == ParseError::HeadersTooLarge) {
      return ParseEvent::Error; // trailers over the limit
    }
    error_ = type_ == MessageType::Request ? ParseError::BadRequest : ParseError::BadResponse;
    if (in_head_ && max_head_bytes_ > 0 && head_bytes_ + *consumed > max_head_bytes_) {
      error_ = ParseError::HeadersTooLarge;
    }
    return ParseEvent::Error;
  }
}

void Parser::resume() {
  llhttp_resume(parser_.get());
}

bool Parser::finish() {
  llhttp_errno_t err = llhttp_finish(parser_.get());
  return err == HPE_OK && complete_;
}

std::string_view reasonPhrase(uint32_t status) {
  switch (status) {
#define SLUICE_REASON_CASE(code, phrase)                                                           \
  case code:                                                                                       \
    return phrase;
    SLUICE_HTTP_STATUS_CODES(SLUICE_REASON_CASE)
#undef SLUICE_REASON_CASE
  default:
    return "Unknown";
  }
}

void appendDecimal(network::Buffer& out, uint64_t v) {
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(tmp + i, sizeof(tmp) - i);
}

void appendStatusLine(network::Buffer& out, uint32_t status) {
  out.append("HTTP/1.1 ");
  appendDecimal(out, status);
  out.append(' ');
  out.append(reasonPhrase(status));
  out.append("\r\n");
}

void appendHeader(network::Buffer& out, std::string_view name, std::string_view value) {
  size_t avail;
  size_t n = name.size() + value.size() + 4;
  char* p = out.reserve(n, &avail);
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  if (!value.empty()) {
    std::memcpy(p, value.data(), value.size());
  }
  p += value.size();
  *p++ = '\r';
  *p++ = '\n';
  out.commit(n);
}

void appendChunk(network::Buffer& out, std::string_view data) {
  if (data.empty()) {
    return;
  }
  char tmp[20];
  int n = snprintf(tmp, sizeof(tmp), "%zx\r\n", data.size());
  out.append(tmp, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
}

void appendLastChunk(network::Buffer& out, const HeaderMap* trailers) {
  out.append("0\r\n");
  if (trailers != nullptr) {
    for (const auto& e : trailers->entries()) {
      appendHeader(out, e.name, e.value);
    }
  }
  out.append("\r\n");
}

} // namespace sluice::http

namespace sluice::http {

ParseEvent parseStep(Parser& parser, network::Buffer& in, network::Buffer& head_buf,
                     bool* head_ready) {
  size_t n = 0;
  ParseEvent ev = parser.execute(in, &n);
  *head_ready = parser.takeHeadReady();
  if (ev == ParseEvent::Error) {
    return ev;
  }
  if (*head_ready) {
    head_buf.swap(in);
    in.clear();
    size_t rest_at = head_buf.readOffset() + n;
    if (rest_at < head_buf.writeOffset()) {
      in.append(head_buf.data() + rest_at, head_buf.writeOffset() - rest_at);
    }
  } else if (parser.inHead()) {
    in.skip(n);
  } else {
    in.drain(n);
    if (ev == ParseEvent::MessageComplete && in.readOffset() > 0) {
      in.compact();
    }
  }
  return ev;
}

} // namespace sluice::http
