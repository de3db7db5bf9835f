#!/usr/bin/env bash
# Include-boundary rules (STYLE.md): filters/, extensions/ and examples/ include only api/
# (plus std and the third-party libraries they link); core/ never includes filters/ or
# extensions/; only core/http sees llhttp, only core/config sees nlohmann/json and only core/tls
# sees BoringSSL in core/ (filters that need crypto link it themselves); a room's internal/
# folder is private to that room.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
report() { echo "include boundary: $1"; fail=1; }
while IFS= read -r line; do report "$line (filters/extensions may include only sluice/ ABI headers)"; done < <(
  grep -rnE '#include\s+"core/' filters extensions examples 2>/dev/null)
while IFS= read -r line; do report "$line (core must not include a filter)"; done < <(
  grep -rnE '#include\s+"(filters|extensions)/' core 2>/dev/null)
while IFS= read -r line; do report "$line (llhttp belongs to core/http)"; done < <(
  grep -rnE '#include\s+[<"]llhttp' core | grep -v '^core/http/')
while IFS= read -r line; do report "$line (nlohmann/json belongs to core/config)"; done < <(
  grep -rnE '#include\s+[<"]nlohmann' core | grep -v '^core/config/')
while IFS= read -r line; do report "$line (BoringSSL belongs to core/tls)"; done < <(
  grep -rnE '#include\s+[<"]openssl/' core | grep -v '^core/tls/')
while IFS= read -r line; do
  file=${line%%:*}
  room=$(echo "${file#test/}" | cut -d/ -f2) # core/<room>/... or test/core/<room>/...
  inc=$(echo "$line" | sed -nE 's@.*#include\s+"core/([^/]+)/internal/.*@\1@p')
  if [ -n "$inc" ] && [ "$inc" != "$room" ]; then
    report "$line (core/$inc/internal/ is private to core/$inc)"
  fi
done < <(grep -rnE '#include\s+"core/[^/]+/internal/' core filters extensions examples test tools 2>/dev/null)
if [ $fail -eq 0 ]; then echo "include boundaries ok"; fi
exit $fail
