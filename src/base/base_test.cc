#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "base/accept_pacer.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "base/sha256.h"
#include "base/status.h"

namespace gapless {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

Status FailIfNegative(int x) {
  RETURN_IF_ERROR(x < 0 ? InvalidArgumentError("negative") : Status::Ok());
  return NotFoundError("reached the end");
}

TEST(Status, MacrosPropagateFirstError) {
  int q = 0;
  EXPECT_TRUE(Quarter(8, &q).ok());
  EXPECT_EQ(q, 2);
  Status s = Quarter(6, &q);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: odd");
  EXPECT_EQ(FailIfNegative(-1).message(), "negative");
  EXPECT_EQ(FailIfNegative(1).code(), StatusCode::kNotFound);
}

TEST(Status, StatusOrFromOkStatusIsAnError) {
  StatusOr<int> v(Status::Ok());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(ErrnoToStatus(ENOSPC, "write", "/x").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatus(ENOENT, "open", "/x").code(), StatusCode::kNotFound);
  EXPECT_NE(ErrnoToStatus(EIO, "fsync", "/x").message().find("/x"), std::string::npos);
}

TEST(Coding, RoundTripAndLittleEndianLayout) {
  std::string s;
  PutFixed32(&s, 0x04030201u);
  PutFixed64(&s, 0x0807060504030201ull);
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(std::memcmp(s.data(), "\x01\x02\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08", 12), 0);
  std::string_view in(s);
  uint32_t a = 0;
  uint64_t b = 0;
  ASSERT_TRUE(GetFixed32(&in, &a));
  ASSERT_TRUE(GetFixed64(&in, &b));
  EXPECT_EQ(a, 0x04030201u);
  EXPECT_EQ(b, 0x0807060504030201ull);
  EXPECT_FALSE(GetFixed32(&in, &a));
}

// Test vectors from RFC 3720 appendix B.4 and the common "123456789" check value.
TEST(Crc32c, StandardVectors) {
  char buf[32];
  std::memset(buf, 0, sizeof(buf));
  EXPECT_EQ(crc32c::Value(buf, 32), 0x8a9136aau);
  std::memset(buf, 0xff, sizeof(buf));
  EXPECT_EQ(crc32c::Value(buf, 32), 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c::Value(buf, 32), 0x46dd794eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<char>(31 - i);
  EXPECT_EQ(crc32c::Value(buf, 32), 0x113fdb5cu);
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  EXPECT_EQ(crc32c::Value("hello world"), crc32c::Extend(crc32c::Value("hello "), "world", 5));
}

TEST(Crc32c, HardwareAndPortableAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t off = 0; off < 9; ++off) {
    for (size_t n = 0; off + n <= data.size(); n += 7) {
      ASSERT_EQ(crc32c::ExtendPortable(123, data.data() + off, n),
                crc32c::ExtendHardware(123, data.data() + off, n))
          << off << " " << n;
    }
  }
}

TEST(Crc32c, MaskRoundTripsAndChangesValue) {
  uint32_t crc = crc32c::Value("foo");
  EXPECT_NE(crc, crc32c::Mask(crc));
  EXPECT_NE(crc, crc32c::Mask(crc32c::Mask(crc)));
  EXPECT_EQ(crc, crc32c::Unmask(crc32c::Mask(crc)));
  EXPECT_EQ(crc, crc32c::Unmask(crc32c::Unmask(crc32c::Mask(crc32c::Mask(crc)))));
}

// FIPS 180-2 examples.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(HexEncode(Sha256::Digest("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256::Digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  EXPECT_EQ(HexEncode(h.Finish()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Reusable after Finish.
  EXPECT_EQ(HexEncode(h.Update("a").Update("bc").Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
TEST(AcceptPacer, BacksOffWhileAcceptFailsAndLogsOncePerInterval) {
  AcceptPacer pacer("collector 127.0.0.1:7514");
  const auto t0 = AcceptPacer::Clock::now();
  EXPECT_EQ(pacer.Failed("Too many open files", t0).count(), 10);
  EXPECT_EQ(pacer.unlogged(), 0u) << "the first failure is logged";
  std::chrono::milliseconds d{};
  for (int i = 0; i < 20; ++i)
    d = pacer.Failed("Too many open files", t0 + std::chrono::seconds(1));
  EXPECT_EQ(d.count(), 1000) << "capped at 1 s";
  EXPECT_EQ(pacer.unlogged(), 20u) << "within 10 s of the last line: counted, not logged";
  pacer.Failed("Too many open files", t0 + std::chrono::seconds(11));
  EXPECT_EQ(pacer.unlogged(), 0u) << "one line for the 21 failures";
  pacer.Succeeded();
  EXPECT_EQ(pacer.Failed("Too many open files", t0 + std::chrono::seconds(12)).count(), 10);
}

}  // namespace gapless
