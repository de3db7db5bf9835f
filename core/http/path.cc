#include "core/http/path.h"

#include "core/http/header_map.h"

#include <vector>

namespace sluice::http {

namespace {

int hexValue(char c) {
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

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

} // namespace

PathStatus normalizePath(std::string_view target, std::string& out, bool* changed) {
  *changed = false;
  if (target == "*") {
    return PathStatus::Ok;
  }
  if (target.empty() || target[0] != '/') {
    return PathStatus::Invalid;
  }
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q == std::string_view::npos ? target.size() : q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);

  // Fast path: scan for anything that needs work.
  bool needs = false;
  for (size_t i = 0; i < path.size(); i++) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c < 0x21 || c == 0x7f) {
      return PathStatus::Invalid;
    }
    if (c == '%') {
      needs = true;
    } else if (c == '/' && i + 1 < path.size()) {
      char n = path[i + 1];
      if (n == '/' || n == '.') {
        needs = true;
      }
    }
  }
  for (char c : query) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f) {
      return PathStatus::Invalid;
    }
  }
  if (!needs) {
    return PathStatus::Ok;
  }

  // 1. Decode unreserved escapes, normalize the case of the others.
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); i++) {
    char c = path[i];
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) {
      return PathStatus::Invalid;
    }
    int hi = hexValue(path[i + 1]);
    int lo = hexValue(path[i + 2]);
    if (hi < 0 || lo < 0) {
      return PathStatus::Invalid;
    }
    unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
    if (unreserved(v)) {
      decoded += static_cast<char>(v);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += kHex[hi];
      decoded += kHex[lo];
    }
    i += 2;
  }

  // 2. Segments: drop empty and "." segments, pop on "..".
  std::string result;
  result.reserve(decoded.size());
  size_t i = 1; // decoded[0] == '/'
  bool trailing_slash = false;
  std::vector<size_t> starts; // where each kept segment's '/' begins in result
  while (i <= decoded.size()) {
    size_t slash = decoded.find('/', i);
    if (slash == std::string::npos) {
      slash = decoded.size();
    }
    std::string_view seg(decoded.data() + i, slash - i);
    bool last = slash == decoded.size();
    if (seg.empty() || seg == ".") {
      trailing_slash = last;
    } else if (seg == "..") {
      if (starts.empty()) {
        return PathStatus::EscapesRoot;
      }
      result.resize(starts.back());
      starts.pop_back();
      trailing_slash = last;
    } else {
      starts.push_back(result.size());
      result += '/';
      result += seg;
      trailing_slash = false;
    }
    i = slash + 1;
  }
  if (result.empty() || trailing_slash) {
    result += '/';
  }
  result += query;
  out.swap(result);
  *changed = true;
  return PathStatus::Ok;
}

TargetForm originFormOf(std::string_view target, std::string_view host, std::string_view* origin) {
  *origin = target;
  size_t skip = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    skip = 7;
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    skip = 8;
  } else {
    return TargetForm::Origin;
  }
  const std::string_view rest = target.substr(skip);
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  if (authority.empty() || authority.find('@') != std::string_view::npos || host.empty() ||
      !iequals(authority, host)) {
    return TargetForm::Invalid;
  }
  if (end == std::string_view::npos) {
    *origin = "/";
    return TargetForm::Absolute;
  }
  if (rest[end] != '/') {
    return TargetForm::Invalid;
  }
  *origin = rest.substr(end);
  return TargetForm::Absolute;
}

} // namespace sluice::http
