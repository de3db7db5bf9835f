/* Compiled with -std=c99 -pedantic -Werror: the ABI header is plain C99. */
#include "sluice/filter.h"

static sluice_status_t on_headers(void* filter, sluice_stream_t* s, bool end_stream) {
  (void)filter;
  (void)s;
  (void)end_stream;
  return SLUICE_STATUS_CONTINUE;
}

int sluice_api_c99_check_uses(void);
int sluice_api_c99_check_uses(void) {
  sluice_filter_descriptor_t d = {0};
  sluice_str_t s = SLUICE_STR("x");
  d.size = sizeof d;
  d.sluice_on_request_headers = on_headers;
  return (int)(s.len + d.size) > 0;
}
