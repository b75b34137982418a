#include <gtest/gtest.h>

#include "spool/cursor_file.h"
#include "spool/loss_record.h"
#include "spool/spool_format.h"

namespace gapless::spool {
namespace {

TEST(SpoolFormat, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(42), "00000000000000000042.seg");
  uint64_t base = 0;
  ASSERT_TRUE(ParseSegmentFileName("00000000000000000042.seg", &base));
  EXPECT_EQ(base, 42u);
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000042.seg", &base));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000004x.seg", &base));
  EXPECT_FALSE(ParseSegmentFileName("99999999999999999999.seg", &base));  // > 2^64
  EXPECT_FALSE(ParseSegmentFileName("CURSORS", &base));
}

TEST(SpoolFormat, SegmentHeaderRoundTripAndEveryByteFlipDetected) {
  SegmentHeader h;
  h.epoch[0] = 7;
  h.epoch[15] = 9;
  h.base_seq = 123456789;
  h.created_unix_ns = 1'700'000'000'000'000'000;
  std::string bytes = EncodeSegmentHeader(h);
  ASSERT_EQ(bytes.size(), kSegmentHeaderSize);
  SegmentHeader out;
  bool version_mismatch = true;
  ASSERT_TRUE(DecodeSegmentHeader(bytes, &out, &version_mismatch));
  EXPECT_FALSE(version_mismatch);
  EXPECT_EQ(out.epoch, h.epoch);
  EXPECT_EQ(out.base_seq, h.base_seq);
  EXPECT_EQ(out.created_unix_ns, h.created_unix_ns);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeSegmentHeader(bad, &out, &version_mismatch)) << i;
  }
  EXPECT_FALSE(DecodeSegmentHeader(bytes.substr(0, 47), &out, &version_mismatch));
}

TEST(SpoolFormat, FrameLayoutIsAsDocumented) {
  std::string out;
  AppendFrame(&out, FrameType::kData, 0x0102030405060708ull, "abc", 0);
  ASSERT_EQ(out.size(), kFrameHeaderSize + 3);
  EXPECT_EQ(out.substr(0, 4), std::string("\x03\0\0\0", 4));        // length, little-endian
  EXPECT_EQ(out[4], 1);                                             // type
  EXPECT_EQ(out.substr(5, 8), "\x08\x07\x06\x05\x04\x03\x02\x01");  // seq
  EXPECT_EQ(out.substr(21), "abc");
}

TEST(LossRecord, RoundTrip) {
  LossRecord r;
  r.reason = LossReason::kSpoolFullDropOldest;
  r.has_seq_range = true;
  r.first_seq = 10;
  r.last_seq = 19;
  r.record_count = 10;
  r.bytes = 4096;
  r.time_from_unix_ns = 5;
  r.time_to_unix_ns = 6;
  r.detail = "segment 00000000000000000010.seg";
  auto back = LossRecord::Decode(r.Encode());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_NE(r.ToString().find("spool_full_drop_oldest"), std::string::npos);
}

TEST(LossRecord, TruncatedOrWrongVersionIsAnErrorNotACrash) {
  std::string bytes = LossRecord{}.Encode();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(LossRecord::Decode(bytes.substr(0, n)).ok()) << n;
  }
  std::string flags = bytes;
  flags[2] = 2;  // an unknown flag bit: refused, not silently normalised
  EXPECT_EQ(LossRecord::Decode(flags).status().code(), StatusCode::kInvalidArgument);
  bytes[0] = 9;
  EXPECT_EQ(LossRecord::Decode(bytes).status().code(), StatusCode::kInvalidArgument);
}

TEST(CursorFile, RoundTripAndCorruptionDetected) {
  std::vector<CursorState> cursors = {{"collector-a", 100, true}, {"archive", 7, false}};
  std::string bytes = EncodeCursors(cursors);
  auto back = DecodeCursors(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, cursors);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 1;
    EXPECT_EQ(DecodeCursors(bad).status().code(), StatusCode::kDataLoss) << i;
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeCursors(bytes.substr(0, n)).ok()) << n;
  }
}

}  // namespace
}  // namespace gapless::spool
