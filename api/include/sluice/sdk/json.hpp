#pragma once

// A small, self-contained JSON reader for filter configs (RFC 8259), so that the SDK does not
// force a JSON library on its users. It builds an immutable tree once, at config time; it is
// not meant for the data path. No exceptions: parse() returns false and an error message with
// the byte offset.
//
// Limits: nesting depth 64; numbers are kept as double plus, for integers written without
// fraction or exponent that fit, as int64/uint64 exactly; object keys keep their order; a
// duplicate key is a parse error (a typo must not silently override a setting). Numbers are
// converted with strtod, which follows the C locale sluice runs in.
//
// Filters that prefer another JSON library (nlohmann/json, ...) may ignore this header: the
// raw config text is available to config factories as ConfigContext::json().

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sdk::json {

enum class Type { Null, Bool, Number, String, Array, Object };

class Value {
public:
  using Member = std::pair<std::string, Value>;

  Value() = default;

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }

  bool asBool() const { return bool_; }
  double asDouble() const { return number_; }
  // True when the number is written as an integer (no fraction, no exponent) and fits in
  // int64 (negative) or uint64.
  bool isInteger() const { return type_ == Type::Number && integral_; }
  bool isUnsigned() const { return isInteger() && !negative_; }
  uint64_t asUint() const { return uint_; }
  // Meaningful when isInteger(); wraps (no undefined behaviour) otherwise.
  int64_t asInt() const { return static_cast<int64_t>(negative_ ? ~uint_ + 1 : uint_); }
  const std::string& asString() const { return string_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // Object member by key, or null when absent or when this is not an object.
  const Value* find(std::string_view key) const {
    for (const Member& m : members_) {
      if (m.first == key) {
        return &m.second;
      }
    }
    return nullptr;
  }
  size_t size() const { return type_ == Type::Array ? items_.size() : members_.size(); }

  // A short rendering for error messages: 42, "abc", true, null, an array, an object.
  // A short rendering for error messages, the way sluice's own config errors show a value: its
  // JSON text (42, "abc", true, null, [1,2], {"a":1}), cut at 60 characters with "...".
  std::string describe() const {
    std::string s;
    dump(s, 61);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  }

  // Compact JSON of this value appended to `out`; stops early once `out` is longer than `limit`.
  void dump(std::string& out, size_t limit) const {
    if (out.size() > limit) {
      return;
    }
    switch (type_) {
    case Type::Null:
      out += "null";
      return;
    case Type::Bool:
      out += bool_ ? "true" : "false";
      return;
    case Type::Number:
      out += text_;
      return;
    case Type::String:
      quote(out, string_);
      return;
    case Type::Array:
      out += '[';
      for (size_t i = 0; i < items_.size() && out.size() <= limit; i++) {
        out += i == 0 ? "" : ",";
        items_[i].dump(out, limit);
      }
      out += ']';
      return;
    case Type::Object:
      out += '{';
      for (size_t i = 0; i < members_.size() && out.size() <= limit; i++) {
        out += i == 0 ? "" : ",";
        quote(out, members_[i].first);
        out += ':';
        members_[i].second.dump(out, limit);
      }
      out += '}';
      return;
    }
  }

private:
  friend class Parser;
  static void quote(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20) {
        out += "\\u00";
        out += kHex[u >> 4];
        out += kHex[u & 15];
      } else {
        out += c;
      }
    }
    out += '"';
  }
  Type type_ = Type::Null;
  bool bool_ = false;
  bool integral_ = false;
  bool negative_ = false;
  double number_ = 0;
  uint64_t uint_ = 0;
  std::string text_; // numbers: the literal as written
  std::string string_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

class Parser {
public:
  // Parses `text` into `out`. On failure returns false and sets `error` ("at offset N: ...").
  static bool parse(std::string_view text, Value& out, std::string& error) {
    Parser p(text);
    if (!p.value(out, 0)) {
      error = "at offset " + std::to_string(p.pos_) + ": " + p.error_;
      return false;
    }
    p.skipSpace();
    if (p.pos_ != text.size()) {
      error = "at offset " + std::to_string(p.pos_) + ": unexpected text after the JSON value";
      return false;
    }
    return true;
  }

private:
  static constexpr int kMaxDepth = 64;

  explicit Parser(std::string_view text) : s_(text) {}

  bool fail(const char* msg) {
    error_ = msg;
    return false;
  }
  void skipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      pos_++;
    }
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) {
      return fail("invalid literal");
    }
    pos_ += word.size();
    return true;
  }

  bool value(Value& v, int depth) {
    skipSpace();
    if (pos_ >= s_.size()) {
      return fail("unexpected end of input");
    }
    char c = s_[pos_];
    switch (c) {
    case 'n':
      v.type_ = Type::Null;
      return literal("null");
    case 't':
      v.type_ = Type::Bool;
      v.bool_ = true;
      return literal("true");
    case 'f':
      v.type_ = Type::Bool;
      v.bool_ = false;
      return literal("false");
    case '"':
      v.type_ = Type::String;
      return string(v.string_);
    case '[':
      return array(v, depth);
    case '{':
      return object(v, depth);
    default:
      if (c == '-' || (c >= '0' && c <= '9')) {
        return number(v);
      }
      return fail("unexpected character");
    }
  }

  bool array(Value& v, int depth) {
    if (depth >= kMaxDepth) {
      return fail("nesting too deep");
    }
    v.type_ = Type::Array;
    pos_++; // [
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      pos_++;
      return true;
    }
    for (;;) {
      v.items_.emplace_back();
      if (!value(v.items_.back(), depth + 1)) {
        return false;
      }
      skipSpace();
      if (pos_ >= s_.size()) {
        return fail("unterminated array");
      }
      if (s_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (s_[pos_] == ']') {
        pos_++;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  bool object(Value& v, int depth) {
    if (depth >= kMaxDepth) {
      return fail("nesting too deep");
    }
    v.type_ = Type::Object;
    pos_++; // {
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      pos_++;
      return true;
    }
    for (;;) {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') {
        return fail("expected a string key");
      }
      std::string key;
      if (!string(key)) {
        return false;
      }
      if (v.find(key) != nullptr) {
        return fail("duplicate key");
      }
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') {
        return fail("expected ':'");
      }
      pos_++;
      v.members_.emplace_back(std::move(key), Value());
      if (!value(v.members_.back().second, depth + 1)) {
        return false;
      }
      skipSpace();
      if (pos_ >= s_.size()) {
        return fail("unterminated object");
      }
      if (s_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (s_[pos_] == '}') {
        pos_++;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  static int hexDigit(char c) {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  }
  bool hex4(uint32_t& out) {
    if (pos_ + 4 > s_.size()) {
      return fail("truncated \\u escape");
    }
    out = 0;
    for (int i = 0; i < 4; i++) {
      int d = hexDigit(s_[pos_ + i]);
      if (d < 0) {
        return fail("invalid \\u escape");
      }
      out = out * 16 + static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }
  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool string(std::string& out) {
    pos_++; // opening quote
    for (;;) {
      if (pos_ >= s_.size()) {
        return fail("unterminated string");
      }
      char c = s_[pos_++];
      if (c == '"') {
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return fail("control character in string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) {
        return fail("unterminated string");
      }
      char e = s_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(cp)) {
          return false;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo = 0;
          if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
            return fail("unpaired surrogate in \\u escape");
          }
          pos_ += 2;
          if (!hex4(lo)) {
            return false;
          }
          if (lo < 0xDC00 || lo > 0xDFFF) {
            return fail("unpaired surrogate in \\u escape");
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail("unpaired surrogate in \\u escape");
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return fail("invalid escape in string");
      }
    }
  }

  bool number(Value& v) {
    size_t start = pos_;
    bool negative = false;
    if (s_[pos_] == '-') {
      negative = true;
      pos_++;
    }
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
      return fail("invalid number");
    }
    if (s_[pos_] == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9') {
      return fail("leading zero in number");
    }
    bool integral = true;
    bool overflow = false;
    uint64_t u = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      uint64_t d = static_cast<uint64_t>(s_[pos_] - '0');
      if (u > (UINT64_MAX - d) / 10) {
        overflow = true;
      } else {
        u = u * 10 + d;
      }
      pos_++;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      pos_++;
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        return fail("invalid number");
      }
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        pos_++;
      }
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      pos_++;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
        pos_++;
      }
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        return fail("invalid number");
      }
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        pos_++;
      }
    }
    v.type_ = Type::Number;
    v.text_ = std::string(s_.substr(start, pos_ - start));
    v.number_ = std::strtod(v.text_.c_str(), nullptr);
    v.negative_ = negative && u != 0;
    v.uint_ = u;
    v.integral_ = integral && !overflow && (!negative || u <= static_cast<uint64_t>(INT64_MAX));
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// RFC 6901: one reference token of a JSON pointer ("~" -> "~0", "/" -> "~1"), and the pointer to
// member `key` of the value at `ptr`. The one implementation every config reader shares: the
// SDK's, the host's config view, core/config's loader and the built-in filters' reader.
inline std::string escapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}
inline std::string pointerTo(std::string_view ptr, std::string_view key) {
  std::string out(ptr);
  out += '/';
  out += escapePointerToken(key);
  return out;
}

inline bool parse(std::string_view text, Value& out, std::string& error) {
  return Parser::parse(text, out, error);
}

} // namespace sluice::sdk::json
