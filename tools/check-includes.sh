#!/usr/bin/env bash
# Include-boundary rules (STYLE.md): filters/, extensions/ and examples/ include only api/
# (plus std and the third-party libraries they link); core/ never includes filters/ or
# extensions/; only core/http sees llhttp, only core/config sees nlohmann/json in core/.
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
if [ $fail -eq 0 ]; then echo "include boundaries ok"; fi
exit $fail
