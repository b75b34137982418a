// Fuzzes the decoders of the spool's small formats: loss records and the CURSORS file.
// Decoding must never crash; whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "spool/cursor_file.h"
#include "spool/loss_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto loss = gapless::spool::LossRecord::Decode(in);
  if (loss.ok() && loss->Encode() != in) __builtin_trap();
  if (loss.ok()) (void)loss->ToString();
  auto cursors = gapless::spool::DecodeCursors(in);
  if (cursors.ok() && gapless::spool::EncodeCursors(*cursors) != in) __builtin_trap();
  return 0;
}
