#include "spool/cursor_file.h"

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace gapless::spool {
namespace {
constexpr char kCursorMagic[8] = {'G', 'L', 'C', 'U', 'R', 'S', '0', '1'};
}

std::string EncodeCursors(const std::vector<CursorState>& cursors) {
  std::string out(kCursorMagic, sizeof(kCursorMagic));
  PutFixed32(&out, static_cast<uint32_t>(cursors.size()));
  for (const CursorState& c : cursors) {
    const size_t len = std::min<size_t>(c.name.size(), 0xffff);
    out.push_back(static_cast<char>(len & 0xff));
    out.push_back(static_cast<char>(len >> 8));
    out.append(c.name, 0, len);
    PutFixed64(&out, c.next_seq);
    out.push_back(static_cast<char>(c.required ? 1 : 0));
  }
  PutFixed32(&out, crc32c::Mask(crc32c::Value(out)));
  return out;
}

StatusOr<std::vector<CursorState>> DecodeCursors(std::string_view in) {
  if (in.size() < sizeof(kCursorMagic) + 8 ||
      std::memcmp(in.data(), kCursorMagic, sizeof(kCursorMagic)) != 0) {
    return DataLossError("not a cursor file (bad magic or too short)");
  }
  const size_t body = in.size() - 4;
  if (crc32c::Unmask(DecodeFixed32(in.data() + body)) != crc32c::Value(in.data(), body)) {
    return DataLossError("cursor file checksum mismatch");
  }
  in = in.substr(sizeof(kCursorMagic), body - sizeof(kCursorMagic));
  uint32_t count = 0;
  GetFixed32(&in, &count);
  std::vector<CursorState> out;
  for (uint32_t i = 0; i < count; ++i) {
    if (in.size() < 2) return DataLossError("cursor file truncated");
    size_t len = static_cast<uint8_t>(in[0]) | (size_t{static_cast<uint8_t>(in[1])} << 8);
    in.remove_prefix(2);
    if (in.size() < len + 9) return DataLossError("cursor file truncated");
    CursorState c;
    c.name = std::string(in.substr(0, len));
    in.remove_prefix(len);
    GetFixed64(&in, &c.next_seq);
    if ((static_cast<uint8_t>(in[0]) & ~1u) != 0) {
      return DataLossError("cursor file has unknown flag bits set");
    }
    c.required = (in[0] & 1) != 0;
    in.remove_prefix(1);
    out.push_back(std::move(c));
  }
  if (!in.empty()) return DataLossError("cursor file has trailing bytes");
  return out;
}

}  // namespace gapless::spool
