#include "spool/spool_format.h"

#include <cstdio>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace gapless::spool {

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string out(kSegmentMagic, sizeof(kSegmentMagic));
  PutFixed32(&out, kFormatVersion);
  out.append(reinterpret_cast<const char*>(h.epoch.data()), h.epoch.size());
  PutFixed64(&out, h.base_seq);
  PutFixed64(&out, static_cast<uint64_t>(h.created_unix_ns));
  PutFixed32(&out, crc32c::Mask(crc32c::Value(out)));
  return out;
}

bool DecodeSegmentHeader(std::string_view bytes, SegmentHeader* out, bool* version_mismatch) {
  *version_mismatch = false;
  if (bytes.size() < kSegmentHeaderSize) return false;
  const char* p = bytes.data();
  if (crc32c::Unmask(DecodeFixed32(p + kSegmentHeaderSize - 4)) !=
      crc32c::Value(p, kSegmentHeaderSize - 4)) {
    return false;
  }
  if (std::memcmp(p, kSegmentMagic, sizeof(kSegmentMagic)) != 0) return false;
  if (DecodeFixed32(p + 8) != kFormatVersion) {
    *version_mismatch = true;
    return false;
  }
  std::memcpy(out->epoch.data(), p + 12, 16);
  out->base_seq = DecodeFixed64(p + 28);
  out->created_unix_ns = static_cast<int64_t>(DecodeFixed64(p + 36));
  return true;
}

std::string EncodePosition(std::string_view key, std::string_view value) {
  std::string out;
  PutLengthPrefixed(&out, key);
  out.append(value);
  return out;
}

bool DecodePosition(std::string_view payload, std::string* key, std::string* value) {
  std::string_view k;
  if (!GetLengthPrefixed(&payload, &k) || k.empty() || k.size() > kMaxPositionKeyBytes ||
      payload.size() > kMaxPositionValueBytes) {
    return false;
  }
  key->assign(k);
  value->assign(payload);
  return true;
}

void AppendFrame(std::string* dst, FrameType type, uint64_t seq, std::string_view payload,
                 uint32_t payload_crc) {
  char h[kFrameHeaderSize];
  EncodeFixed32(h, static_cast<uint32_t>(payload.size()));
  h[4] = static_cast<char>(type);
  EncodeFixed64(h + 5, seq);
  EncodeFixed32(h + 13, crc32c::Mask(crc32c::Value(h, 13)));
  EncodeFixed32(h + 17, crc32c::Mask(payload_crc));
  dst->append(h, kFrameHeaderSize);
  dst->append(payload);
}

Hash256 RecordLeafHash(FrameType type, std::string_view payload) {
  thread_local Sha256 h;
  const uint8_t prefix[2] = {0x00, static_cast<uint8_t>(type)};
  return h.Update(prefix, 2).Update(payload).Finish();
}

std::string SegmentFileName(uint64_t base_seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu.seg", static_cast<unsigned long long>(base_seq));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* base_seq) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  uint64_t v = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return false;
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;  // overflow
    v = next;
  }
  *base_seq = v;
  return true;
}

}  // namespace gapless::spool
