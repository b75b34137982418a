#include "checkpoint/checkpoint.h"

#include <gtest/gtest.h>

#include "base/sha256.h"
#include "checkpoint/note.h"
#include "identity/identity.h"

namespace gapless::checkpoint {
namespace {

std::unique_ptr<identity::SigningKey> NewKey() {
  auto k = identity::SigningKey::Generate();
  EXPECT_TRUE(k.ok());
  return std::move(*k);
}

Checkpoint Sample() {
  Checkpoint c;
  c.origin = AgentOrigin("web-01", "00112233445566778899aabbccddeeff");
  c.size = 123456;
  for (size_t i = 0; i < c.root.size(); ++i) c.root[i] = static_cast<uint8_t>(i * 7);
  return c;
}

TEST(Checkpoint, FormatIsTheC2spBodyAndParsesBack) {
  Checkpoint c = Sample();
  EXPECT_EQ(FormatCheckpoint(c),
            "gapless/agent/web-01/00112233445566778899aabbccddeeff\n123456\n"
            "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n");
  c.extensions = {"a first extension", "another"};
  auto back = ParseCheckpoint(FormatCheckpoint(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
}

TEST(Checkpoint, MalformedBodiesSayWhichLineIsWrong) {
  const std::string root = "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=";
  for (const auto& [text, line] : std::vector<std::pair<std::string, std::string>>{
           {"o\n12\n" + root, "newline"},
           {"o\n12\n", "origin, size and root"},
           {"\n12\n" + root + "\n", "line 1"},
           {"o\n012\n" + root + "\n", "line 2"},
           {"o\n-1\n" + root + "\n", "line 2"},
           {"o\n18446744073709551616\n" + root + "\n", "line 2"},
           {"o\n12\nAAAA\n", "line 3"},
           {"o\n12\n" + root + "\n\n", "line 4"},
       }) {
    auto c = ParseCheckpoint(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find(line), std::string::npos) << c.status().ToString();
  }
  auto max = ParseCheckpoint("o\n18446744073709551615\n" + root + "\n");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->size, UINT64_MAX);
}

TEST(SignedNote, SignedCheckpointVerifiesWithItsVerifierKey) {
  auto key = NewKey();
  const std::string name = "gapless/agent/web-01";
  auto note = SignNote(FormatCheckpoint(Sample()), name, *key);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_NE(note->find("\n\n\xE2\x80\x94 gapless/agent/web-01 "), std::string::npos);
  auto v = ParseVerifierKey(FormatVerifierKey(name, key->public_key()));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto parsed = ParseNote(*note);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(VerifyNote(*parsed, *v).ok());
  auto body = ParseCheckpoint(parsed->text);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, Sample());
}

// Flip any bit of a signed note: it no longer parses, or its signature no longer
// verifies. Nothing about it may still be accepted.
TEST(SignedNote, EveryFlippedBitIsDetected) {
  auto key = NewKey();
  auto v = ParseVerifierKey(FormatVerifierKey("k", key->public_key()));
  ASSERT_TRUE(v.ok());
  const std::string note = *SignNote(FormatCheckpoint(Sample()), "k", *key);
  for (size_t i = 0; i < note.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = note;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto parsed = ParseNote(bad);
      if (!parsed.ok()) continue;
      const Status s = VerifyNote(*parsed, *v);
      ASSERT_FALSE(s.ok()) << "byte " << i << " bit " << bit;
      ASSERT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kNotFound);
    }
  }
}

TEST(SignedNote, OtherKeysAndNamesDoNotVerifyAndCosignaturesDo) {
  auto key = NewKey();
  auto other = NewKey();
  const std::string note = *SignNote("hello\n", "log", *key);
  auto parsed = ParseNote(note);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(
      VerifyNote(*parsed, *ParseVerifierKey(FormatVerifierKey("log", other->public_key()))).code(),
      StatusCode::kNotFound);
  EXPECT_EQ(
      VerifyNote(*parsed, *ParseVerifierKey(FormatVerifierKey("log2", key->public_key()))).code(),
      StatusCode::kNotFound);
  // A forged signature line under the right name and key id.
  Note forged = *parsed;
  forged.signatures[0].signature = other->Sign("hello\n");
  EXPECT_EQ(
      VerifyNote(forged, *ParseVerifierKey(FormatVerifierKey("log", key->public_key()))).code(),
      StatusCode::kDataLoss);
  // A witness adds its cosignature; both verify.
  auto line = SignatureLine(parsed->text, "witness", *other);
  ASSERT_TRUE(line.ok());
  auto cosigned = ParseNote(AddSignatureLine(note, *line));
  ASSERT_TRUE(cosigned.ok());
  EXPECT_EQ(cosigned->signatures.size(), 2u);
  EXPECT_TRUE(
      VerifyNote(*cosigned, *ParseVerifierKey(FormatVerifierKey("log", key->public_key()))).ok());
  EXPECT_TRUE(
      VerifyNote(*cosigned, *ParseVerifierKey(FormatVerifierKey("witness", other->public_key())))
          .ok());
}

// tlog-cosignature/v1, checked byte by byte against the spec's layout (written out here,
// not through the code under test): id = SHA-256(name || 0x0A || 0x04 || key)[:4],
// then the big-endian timestamp, then Ed25519 over "cosignature/v1\ntime <t>\n" || text.
TEST(Cosignature, HasTheSpecifiedLayoutAndVerifies) {
  auto log_key = NewKey();
  auto witness = NewKey();
  const std::string text =
      "gapless/collector/c/a/00\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  const std::string note = *SignNote(text, "gapless/collector/c", *log_key);
  auto line = CosignatureLine(text, "witness.example/w1", *witness, 1679315147);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  const std::string prefix = "\xE2\x80\x94 witness.example/w1 ";
  ASSERT_EQ(line->substr(0, prefix.size()), prefix);
  auto raw = identity::Base64Decode(line->substr(prefix.size(), line->size() - prefix.size() - 1));
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->size(), 4u + 8u + 64u);
  Sha256 h;
  const uint8_t sep_type[2] = {'\n', 0x04};
  h.Update("witness.example/w1").Update(sep_type, 2).Update(witness->public_key().data(), 32);
  const Hash256 id = h.Finish();
  EXPECT_EQ(raw->substr(0, 4), std::string(reinterpret_cast<const char*>(id.data()), 4));
  uint64_t ts = 0;
  for (int i = 4; i < 12; ++i)
    ts = (ts << 8) | static_cast<uint8_t>((*raw)[static_cast<size_t>(i)]);
  EXPECT_EQ(ts, 1679315147u);
  EXPECT_TRUE(identity::Verify(witness->public_key(), "cosignature/v1\ntime 1679315147\n" + text,
                               raw->substr(12)));
  EXPECT_EQ(CosignerKeyId("witness.example/w1", witness->public_key()),
            (uint32_t{id[0]} << 24) | (uint32_t{id[1]} << 16) | (uint32_t{id[2]} << 8) | id[3]);

  auto cosigned = ParseNote(AddSignatureLine(note, *line));
  ASSERT_TRUE(cosigned.ok());
  const std::string vkey = FormatCosignerKey("witness.example/w1", witness->public_key());
  auto v = ParseCosignerKey(vkey);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto got = VerifyCosignature(*cosigned, *v);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, 1679315147u);
  // The log's own signature still verifies, and is not taken for a cosignature.
  EXPECT_TRUE(VerifyNote(*cosigned, *ParseVerifierKey(FormatVerifierKey("gapless/collector/c",
                                                                        log_key->public_key())))
                  .ok());
  // A cosigner key is not a note signer key and the other way round.
  EXPECT_FALSE(ParseVerifierKey(vkey).ok());
  EXPECT_FALSE(ParseCosignerKey(FormatVerifierKey("w", witness->public_key())).ok());
  // A note signature by the witness key (type 0x01) is not a cosignature.
  auto plain =
      ParseNote(AddSignatureLine(note, *SignatureLine(text, "witness.example/w1", *witness)));
  EXPECT_EQ(VerifyCosignature(*plain, *v).status().code(), StatusCode::kNotFound);
}

TEST(Cosignature, AnyChangeToTheTextTimestampOrSignatureIsRefused) {
  auto witness = NewKey();
  const std::string text = "origin\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  const std::string note = text + "\n" + *CosignatureLine(text, "w", *witness, 99);
  const auto v = *ParseCosignerKey(FormatCosignerKey("w", witness->public_key()));
  ASSERT_TRUE(VerifyCosignature(*ParseNote(note), v).ok());
  size_t refused = 0, parsed_count = 0;
  for (size_t i = 0; i < note.size(); ++i) {
    std::string bad = note;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto n = ParseNote(bad);
    if (!n.ok()) continue;
    ++parsed_count;
    if (!VerifyCosignature(*n, v).ok()) ++refused;
  }
  EXPECT_GT(parsed_count, 0u);
  EXPECT_EQ(refused, parsed_count);
  EXPECT_FALSE(CosignatureLine(text, "w", *witness, uint64_t{1} << 63).ok());
}

TEST(SignedNote, MalformedNotesAndKeysAreRefused) {
  auto key = NewKey();
  EXPECT_FALSE(SignNote("no newline", "k", *key).ok());
  EXPECT_FALSE(SignNote("", "k", *key).ok());
  EXPECT_FALSE(SignNote("tab\there\n", "k", *key).ok());
  EXPECT_FALSE(SignNote("bad \xff utf8\n", "k", *key).ok());
  EXPECT_FALSE(SignNote("ok\n", "has space", *key).ok());
  EXPECT_FALSE(SignNote("ok\n", "has+plus", *key).ok());
  for (const std::string bad :
       {"text only\n", "text\n\n", "text\n\n- k AAAA\n", "text\n\n\xE2\x80\x94 k AAAA\n",
        "text\n\n\xE2\x80\x94 k\n", "text\n\n\xE2\x80\x94 k AAAAAAAA"}) {
    EXPECT_FALSE(ParseNote(bad).ok()) << bad;
  }
  const std::string vkey = FormatVerifierKey("k", key->public_key());
  EXPECT_TRUE(ParseVerifierKey(vkey).ok());
  std::string wrong_id = vkey;
  wrong_id[2] = wrong_id[2] == '0' ? '1' : '0';
  EXPECT_FALSE(ParseVerifierKey(wrong_id).ok());
  EXPECT_FALSE(ParseVerifierKey("k+abc").ok());
}

// The example of Go's golang.org/x/mod/sumdb/note documentation, the reference
// implementation of signed notes: its verifier key and signed text must verify here.
TEST(SignedNote, VerifiesTheReferenceImplementationsExample) {
  auto v = ParseVerifierKey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto note = ParseNote(
      "If you think cryptography is the answer to your problem,\n"
      "then you don't know what your problem is.\n"
      "\n"
      "\xE2\x80\x94 PeterNeumann "
      "x08go/ZJkuBS9UG/"
      "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_TRUE(VerifyNote(*note, *v).ok());
}

}  // namespace
}  // namespace gapless::checkpoint
