#include "archive/encryption.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "env/fault_injection_env.h"

namespace gapless::archive {
namespace {

// Encrypts `plain` into the in-memory env and returns the ciphertext.
std::string Encrypt(env::FaultInjectionEnv* env, const std::string& plain,
                    const std::vector<X25519Key>& to) {
  EXPECT_TRUE(env->CreateDir("/d").ok());
  auto out = env->NewWritableFile("/d/enc");
  EXPECT_TRUE(out.ok());
  auto enc = NewEncryptingFile(std::move(*out), to);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  // Appended in uneven pieces, as the archive writer does.
  for (size_t at = 0; at < plain.size();) {
    const size_t n = std::min<size_t>(plain.size() - at, 1 + (at * 7919) % 100000);
    EXPECT_TRUE((*enc)->Append(std::string_view(plain).substr(at, n)).ok());
    at += n;
  }
  EXPECT_TRUE((*enc)->Close().ok());
  return env->Contents("/d/enc");
}

StatusOr<std::string> Decrypt(env::FaultInjectionEnv* env, const std::string& sealed,
                              const Identity& id) {
  env->SetDurableContents("/d/dec", sealed);
  auto file = env->NewRandomAccessFile("/d/dec");
  EXPECT_TRUE(file.ok());
  uint64_t size = 0;
  ASSIGN_OR_RETURN(auto plain, OpenDecrypted(**file, sealed.size(), id, &size));
  std::string out(size, '\0');
  ASSIGN_OR_RETURN(size_t got, plain->Read(0, out.size(), out.data()));
  if (got != size) return DataLossError("short");
  return out;
}

TEST(Encryption, RoundTripsForEveryRecipientAtChunkEdges) {
  env::FaultInjectionEnv env;
  auto a = Identity::Generate(), b = Identity::Generate(), c = Identity::Generate();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (size_t n : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{65537},
                   size_t{3 * 65536}, size_t{1000000}}) {
    std::string plain(n, '\0');
    for (size_t i = 0; i < n; ++i) plain[i] = static_cast<char>(i * 131 + n);
    const std::string sealed = Encrypt(&env, plain, {a->recipient(), b->recipient()});
    for (const Identity* id : {&*a, &*b}) {
      auto back = Decrypt(&env, sealed, *id);
      ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
      ASSERT_EQ(*back, plain) << n;
    }
    auto stranger = Decrypt(&env, sealed, *c);
    EXPECT_EQ(stranger.status().code(), StatusCode::kFailedPrecondition) << n;
  }
}

// Every byte of the header and of the payload is covered: a change is refused, and a
// file cut at a chunk boundary is not mistaken for a shorter archive.
TEST(Encryption, AlteredReorderedOrCutCiphertextIsRefused) {
  env::FaultInjectionEnv env;
  auto id = Identity::Generate();
  ASSERT_TRUE(id.ok());
  std::string plain(3 * 65536 + 100, 'p');
  const std::string sealed = Encrypt(&env, plain, {id->recipient()});
  for (size_t i = 0; i < sealed.size(); i += (i < 200 ? 1 : 4099)) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto back = Decrypt(&env, bad, *id);
    ASSERT_FALSE(back.ok() && *back == plain) << "byte " << i;
  }
  const size_t header = sealed.size() - (3 * (65536 + 16) + 100 + 16);
  auto cut = Decrypt(&env, sealed.substr(0, header + 2 * (65536 + 16)), *id);
  EXPECT_EQ(cut.status().code(), StatusCode::kDataLoss) << "cut at a chunk boundary";
  std::string swapped = sealed;  // chunks 0 and 1 exchanged
  std::copy(sealed.begin() + header, sealed.begin() + header + 65552,
            swapped.begin() + header + 65552);
  std::copy(sealed.begin() + header + 65552, sealed.begin() + header + 2 * 65552,
            swapped.begin() + header);
  EXPECT_FALSE(Decrypt(&env, swapped, *id).ok());
}

TEST(Encryption, IdentityFilesArePrivateAndRecipientsParse) {
  const std::string dir = ::testing::TempDir() + "gapless_enc_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  auto id = Identity::Generate();
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(id->Save(dir + "/id").ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/id").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = Identity::Load(dir + "/id");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->recipient(), id->recipient());
  EXPECT_FALSE(id->Save(dir + "/id").ok()) << "never overwritten";
  ASSERT_EQ(::chmod((dir + "/id").c_str(), 0644), 0);
  EXPECT_FALSE(Identity::Load(dir + "/id").ok()) << "others can read it";
  auto r = ParseRecipient(FormatRecipient(id->recipient()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, id->recipient());
  EXPECT_FALSE(ParseRecipient("AAAA").ok());
  std::filesystem::remove_all(dir);
}

// Peak memory of the whole process, from /proc (kB).
long PeakRssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Encrypts and decrypts GAPLESS_ENCRYPT_BYTES (default 256 MiB; `make test-long`: 1 GiB)
// through files on disk, streaming: the process's peak memory must not grow by more than
// a few chunks, whatever the size.
TEST(Encryption, LargeArchiveRoundTripsInBoundedMemory) {
  const char* v = std::getenv("GAPLESS_ENCRYPT_BYTES");
  const uint64_t total = v != nullptr ? std::strtoull(v, nullptr, 10) : (256ull << 20);
  const std::string dir = ::testing::TempDir() + "gapless_encbig_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  env::Env* posix = env::Env::Posix();
  auto id = Identity::Generate();
  ASSERT_TRUE(id.ok());
  const long rss_before = PeakRssKb();
  std::string block(1 << 20, '\0');
  auto pattern = [&](uint64_t at) {
    for (size_t i = 0; i < block.size(); i += 8) {
      const uint64_t x = (at + i) * 0x9e3779b97f4a7c15ull;
      std::memcpy(&block[i], &x, 8);
    }
  };
  {
    auto out = posix->NewWritableFile(dir + "/big");
    ASSERT_TRUE(out.ok());
    auto enc = NewEncryptingFile(std::move(*out), {id->recipient()});
    ASSERT_TRUE(enc.ok());
    for (uint64_t at = 0; at < total; at += block.size()) {
      pattern(at);
      ASSERT_TRUE((*enc)->Append(block).ok());
    }
    ASSERT_TRUE((*enc)->Close().ok());
  }
  auto file = posix->NewRandomAccessFile(dir + "/big");
  ASSERT_TRUE(file.ok());
  auto size = posix->GetFileSize(dir + "/big");
  ASSERT_TRUE(size.ok());
  uint64_t plain_size = 0;
  auto plain = OpenDecrypted(**file, *size, *id, &plain_size);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_EQ(plain_size, total);
  std::string got(block.size(), '\0');
  for (uint64_t at = 0; at < total; at += block.size()) {
    auto n = (*plain)->Read(at, got.size(), got.data());
    ASSERT_TRUE(n.ok());
    pattern(at);
    ASSERT_EQ(got, block) << "at " << at;
  }
  const long grown_kb = PeakRssKb() - rss_before;
  std::printf("%llu MiB encrypted and decrypted; peak memory grew by %ld kB\n",
              static_cast<unsigned long long>(total >> 20), grown_kb);
  // Holding the archive would grow the peak by its size; a quarter leaves room for
  // sanitizers (ASan keeps freed OpenSSL buffers in quarantine) and still catches that.
  // ctest runs each test in its own process, so no earlier test has raised the peak.
  EXPECT_LT(grown_kb, static_cast<long>(total / 1024 / 4))
      << "not streaming: memory grew with the archive";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gapless::archive
