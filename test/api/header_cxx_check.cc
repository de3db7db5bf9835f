// Compiled as C++20 with -pedantic -Werror: the ABI header is usable from C++.
#include "sluice/filter.h"

int sluiceApiCxxCheckUses() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof d;
  sluice_str_t s = SLUICE_STR("x");
  return static_cast<int>(s.len + d.size) > 0;
}
