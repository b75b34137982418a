#include "identity/identity.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace gapless::identity {
namespace {

std::string TempDir() {
  std::string tmpl = std::string(::testing::TempDir()) + "identity_XXXXXX";
  return std::string(mkdtemp(tmpl.data()));
}

TEST(Base64, RoundTripsEveryLengthAndMatchesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_FALSE(Base64Decode("Zm9").ok());
  EXPECT_FALSE(Base64Decode("Zm=v").ok());
  EXPECT_FALSE(Base64Decode("Z!9v").ok());
}

// Only the canonical text of some bytes decodes: "Zh==" and "Zm9=" carry set bits that
// padding leaves unused, so they would otherwise decode to the same bytes as "Zg==" and
// "Zm8=" (found by SignedNote.EveryFlippedBitIsDetected: a signature line could change
// and still verify).
TEST(Base64, NonCanonicalTextIsRefused) {
  EXPECT_FALSE(Base64Decode("Zh==").ok());
  EXPECT_FALSE(Base64Decode("Zm9=").ok());
  EXPECT_EQ(*Base64Decode("Zg=="), "f");
  EXPECT_EQ(*Base64Decode("Zm8="), "fo");
  for (int len = 0; len < 40; ++len) {
    std::string bytes;
    for (int i = 0; i < len; ++i) bytes.push_back(static_cast<char>(i * 37 + len));
    const std::string text = Base64Encode(bytes);
    for (size_t i = 0; i < text.size(); ++i) {
      for (int bit = 0; bit < 6; ++bit) {
        std::string other = text;
        other[i] = static_cast<char>(other[i] ^ (1 << bit));
        auto decoded = Base64Decode(other);
        ASSERT_FALSE(decoded.ok() && *decoded == bytes) << text << " → " << other;
      }
    }
  }
}

TEST(SigningKey, SignaturesVerifyOnlyForTheirKeyAndMessage) {
  auto a = SigningKey::Generate();
  auto b = SigningKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string sig = (*a)->Sign("challenge");
  EXPECT_EQ(sig.size(), kSignatureSize);
  EXPECT_TRUE(Verify((*a)->public_key(), "challenge", sig));
  EXPECT_FALSE(Verify((*b)->public_key(), "challenge", sig));
  EXPECT_FALSE(Verify((*a)->public_key(), "challengf", sig));
  std::string bad = sig;
  bad[10] ^= 1;
  EXPECT_FALSE(Verify((*a)->public_key(), "challenge", bad));
  EXPECT_FALSE(Verify((*a)->public_key(), "challenge", sig.substr(1)));
}

TEST(SigningKey, SavesOwnerOnlyAndLoadsTheSameKey) {
  const std::string dir = TempDir();
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  const std::string path = dir + "/agent.key";
  ASSERT_TRUE((*key)->Save(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*key)->Save(path).code(), StatusCode::kAlreadyExists);

  auto loaded = SigningKey::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->public_key(), (*key)->public_key());
  EXPECT_TRUE(Verify((*key)->public_key(), "m", (*loaded)->Sign("m")));

  auto parsed = ParsePublicKey(FormatPublicKey((*key)->public_key()));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, (*key)->public_key());
  EXPECT_FALSE(ParsePublicKey("Zm9v").ok());
}

TEST(SigningKey, RefusesAKeyFileOthersCanRead) {
  const std::string dir = TempDir();
  auto key = SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  const std::string path = dir + "/agent.key";
  ASSERT_TRUE((*key)->Save(path).ok());
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  auto loaded = SigningKey::Load(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("chmod 600"), std::string::npos);

  const std::string junk = dir + "/junk.key";
  std::ofstream(junk) << "not a key\n";
  ASSERT_EQ(chmod(junk.c_str(), 0600), 0);
  EXPECT_EQ(SigningKey::Load(junk).status().code(), StatusCode::kInvalidArgument);
}

TEST(SelfSignedTls, WritesAnOwnerOnlyKeyAndACertificate) {
  const std::string dir = TempDir();
  ASSERT_TRUE(MakeSelfSignedTls(dir + "/tls.key", dir + "/tls.crt", "collector.test").ok());
  EXPECT_TRUE(CheckOwnerOnly(dir + "/tls.key").ok());
  std::ifstream in(dir + "/tls.crt");
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "-----BEGIN CERTIFICATE-----");
}

// A secret is judged on the descriptor it is read from: mode and owner of the file itself
// (a symlink by its target), and only a regular file.
TEST(SecretFiles, OnlyAnOwnerOnlyRegularFileOfThisUserIsRead) {
  const std::string dir = TempDir();
  const std::string secret = dir + "/secret";
  std::ofstream(secret) << "s3cret-token-0123456789\n";
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  auto bytes = ReadSecretFile(secret);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "s3cret-token-0123456789\n");
  EXPECT_TRUE(CheckOwnerOnly(secret).ok());

  ASSERT_EQ(::chmod(secret.c_str(), 0640), 0);
  auto group_readable = ReadSecretFile(secret);
  EXPECT_EQ(group_readable.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(group_readable.status().message().find("mode 0640"), std::string::npos);
  EXPECT_FALSE(CheckOwnerOnly(secret).ok());

  // A 0600 link name proves nothing: the target's mode is what counts.
  const std::string link = dir + "/link";
  ASSERT_EQ(::symlink(secret.c_str(), link.c_str()), 0);
  EXPECT_EQ(ReadSecretFile(link).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  EXPECT_TRUE(ReadSecretFile(link).ok());

  EXPECT_EQ(ReadSecretFile(dir).status().code(), StatusCode::kFailedPrecondition);  // 0700 dir
  EXPECT_EQ(ReadSecretFile(dir + "/absent").status().code(), StatusCode::kNotFound);

  // Owned by another user: that user could change the secret under us.
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(secret.c_str(), 65534, 65534), 0);
    auto foreign = ReadSecretFile(secret);
    EXPECT_EQ(foreign.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(foreign.status().message().find("owned by uid 65534"), std::string::npos)
        << foreign.status().ToString();
  }
}

TEST(SecretFiles, AnOversizedFileIsNotReadWhole) {
  const std::string dir = TempDir();
  const std::string big = dir + "/big";
  std::ofstream(big) << std::string(kMaxSecretFileBytes + 1, 'x');
  ASSERT_EQ(::chmod(big.c_str(), 0600), 0);
  EXPECT_EQ(ReadSecretFile(big).status().code(), StatusCode::kInvalidArgument);
}

TEST(EnrolledKeys, ParsesAgentKeyLinesAndNamesTheLinesItSkips) {
  auto a = SigningKey::Generate();
  auto b = SigningKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string text = "# enrolled agents\n\nweb-01 " + FormatPublicKey((*a)->public_key()) +
                           "\n../etc " + FormatPublicKey((*b)->public_key()) +
                           "\ndb-02 not-a-key\ndb-03 " + FormatPublicKey((*b)->public_key()) + "\n";
  std::vector<int> bad;
  const auto keys = ParseEnrolledKeys(text, &bad);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.at("web-01"), (*a)->public_key());
  EXPECT_EQ(keys.at("db-03"), (*b)->public_key());
  EXPECT_EQ(bad, (std::vector<int>{4, 5}));  // a path as an id, a key that is not one
  EXPECT_FALSE(ValidAgentId(""));
  EXPECT_FALSE(ValidAgentId(".hidden"));
  EXPECT_FALSE(ValidAgentId(std::string(65, 'a')));
  EXPECT_TRUE(ValidAgentId(std::string(64, 'a')));
}

}  // namespace
}  // namespace gapless::identity
