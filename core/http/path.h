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

enum class TargetForm { Origin, Absolute, Invalid };

// A request target in absolute-form (RFC 9112 §3.2.2: "http://" or "https://", an authority, then
// an optional path and query) is accepted as a reverse proxy accepts it when its authority is the
// request's Host (compared without case): `*origin` is then the origin-form part ("/" when there
// is none) that routing and the upstream see. Userinfo, another authority than Host, a missing
// Host, an empty authority or a query right after the authority is Invalid, so the authority a
// filter or the upstream sees (Host) is never other than the one the client addressed. A target
// that is not absolute-form is Origin and `*origin` is the target itself.
TargetForm originFormOf(std::string_view target, std::string_view host, std::string_view* origin);

} // namespace sluice::http
