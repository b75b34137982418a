// Fuzzes every decoder of the agent ↔ collector wire protocol (src/wire) over a stream of
// frames, as a collector or an agent reads them. Properties checked, beyond "never
// crashes or reads out of bounds":
//   - a frame longer than the limit is refused before its body is looked at;
//   - a batch that decodes re-encodes to a batch that decodes to the same records, seqs
//     and leaves (so nothing in a decoded batch depends on bytes the decoder skipped);
//   - a decoded challenge / hello / welcome / ack / error / heartbeat re-encodes to bytes that
//   decode
//     to the same message (not to the same bytes: a varint may arrive non-minimal).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "wire/wire.h"

namespace w = gapless::wire;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// decode(body) ok → encode(decode(body)) decodes, and encodes again to the same bytes.
template <class Decode, class Encode>
void RoundTrip(std::string_view body, Decode decode, Encode encode) {
  auto m = decode(body);
  if (!m.ok()) return;
  const std::string once = encode(*m);
  auto again = decode(once);
  Check(again.ok() && encode(*again) == once);
}

void FuzzBatch(std::string_view body) {
  static w::BatchDecoder dec;
  w::BatchHeader h;
  std::vector<w::WireRecord> recs;
  std::vector<gapless::Hash256> leaves;
  if (!dec.Decode(body, &h, &recs, &leaves).ok()) return;
  Check(recs.size() == h.count && leaves.size() == h.count);
  std::vector<std::string> copies;
  for (const auto& r : recs) copies.emplace_back(r.payload);
  w::BatchEncoder enc;
  enc.Reset(h.first_seq, h.flags);
  if (!h.checkpoint.empty()) Check(enc.SetCheckpoint(h.checkpoint));
  for (size_t i = 0; i < recs.size(); ++i) {
    Check(gapless::crc32c::Value(copies[i]) == recs[i].crc);
    enc.Add(recs[i].type, recs[i].crc, copies[i]);
  }
  std::string frame;
  Check(enc.Finish(&frame).ok());
  w::BatchDecoder dec2;
  w::BatchHeader h2;
  std::vector<w::WireRecord> recs2;
  std::vector<gapless::Hash256> leaves2;
  Check(
      dec2.Decode(std::string_view(frame).substr(w::kFrameHeaderSize), &h2, &recs2, &leaves2).ok());
  Check(h2.first_seq == h.first_seq && h2.count == h.count && h2.flags == h.flags &&
        h2.checkpoint == h.checkpoint && leaves2 == leaves);
  for (size_t i = 0; i < recs.size(); ++i) Check(recs2[i].payload == copies[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr uint32_t kLimit = 1 << 16;
  while (in.size() >= w::kFrameHeaderSize) {
    auto h = w::DecodeFrameHeader(in.substr(0, w::kFrameHeaderSize), kLimit);
    if (!h.ok()) return 0;
    Check(h->body_bytes < kLimit);
    in.remove_prefix(w::kFrameHeaderSize);
    if (h->body_bytes > in.size()) return 0;
    const std::string_view body = in.substr(0, h->body_bytes);
    in.remove_prefix(h->body_bytes);
    switch (h->type) {
      case w::MessageType::kChallenge: {
        RoundTrip(body, w::DecodeChallenge, w::EncodeChallenge);
        break;
      }
      case w::MessageType::kHello: {
        RoundTrip(body, w::DecodeHello, w::EncodeHello);
        break;
      }
      case w::MessageType::kWelcome: {
        RoundTrip(body, w::DecodeWelcome, w::EncodeWelcome);
        break;
      }
      case w::MessageType::kAck: {
        RoundTrip(body, w::DecodeAck, w::EncodeAck);
        break;
      }
      case w::MessageType::kError: {
        RoundTrip(body, w::DecodeError, w::EncodeError);
        break;
      }
      case w::MessageType::kHeartbeat: {
        RoundTrip(body, w::DecodeHeartbeat, w::EncodeHeartbeat);
        break;
      }
      case w::MessageType::kBatch:
        FuzzBatch(body);
        break;
    }
  }
  return 0;
}
