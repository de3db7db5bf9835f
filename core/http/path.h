#pragma once

#include <string>
#include <string_view>

namespace sluice::http {

enum class PathStatus { Ok, Invalid, EscapesRoot };

// Normalizes the path of a request target before routing (the query, from the first '?', is
// kept verbatim): percent-decodes unreserved characters (ALPHA DIGIT - . _ ~) and upper-cases
// the hex digits of escapes it keeps, resolves "." and ".." segments (RFC 3986 §5.2.4) and
// collapses duplicate slashes. A ".." above the root is EscapesRoot; a target that does not start
// with '/' (other than "*"), a bad escape or a control character is Invalid. When nothing needs
// rewriting, *changed is false and `out` is left untouched (no copy, no allocation).
PathStatus normalizePath(std::string_view target, std::string& out, bool* changed);

} // namespace sluice::http
