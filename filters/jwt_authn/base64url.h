#pragma once

// base64url (RFC 4648 §5) as JWS uses it: no padding in tokens, no whitespace.

#include <string>
#include <string_view>

namespace sluice::filters::jwt_authn {

// Decodes `in` into `out` (replaced). Strict: only the base64url alphabet, no padding unless
// `allow_padding` (JWKs written by hand sometimes carry '='), no non-zero trailing bits.
bool base64UrlDecode(std::string_view in, std::string& out, bool allow_padding = false);
void base64UrlEncode(std::string_view in, std::string& out);

} // namespace sluice::filters::jwt_authn
