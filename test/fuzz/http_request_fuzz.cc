// HTTP/1.1 request codec (core/http/codec.*): requests as a client sends them, in arbitrary
// read splits, pipelined, with bodies (fixed and chunked) and trailers.

#include "test/fuzz/codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::runCodec(sluice::http::MessageType::Request, data, size);
  return 0;
}
