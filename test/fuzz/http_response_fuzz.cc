// HTTP/1.1 response parsing, the upstream side of the codec (core/http/codec.*): responses as an
// upstream sends them, in arbitrary read splits, to GET or HEAD, ending by length, chunks or
// close.

#include "test/fuzz/codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::runCodec(sluice::http::MessageType::Response, data, size);
  return 0;
}
