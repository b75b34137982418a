// Fuzzes the archive verifier (src/archive): what `gapless verify FILE` reads from an
// archive an auditor was handed, possibly years later and possibly hostile, and the
// header of an encrypted one. Properties
// checked, beyond "never crashes, reads out of bounds or allocates without bound":
//   - nothing verifies as sealed, or as clean, against a key whose private half does not
//     exist anywhere (a success would be a forgery);
//   - no agent checkpoint verifies against such a key either.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "archive/archive.h"
#include "checkpoint/note.h"

namespace {

class Bytes : public gapless::env::RandomAccessFile {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  gapless::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (offset >= size_) return size_t{0};
    const size_t got = n < size_ - offset ? n : size_ - offset;
    std::memcpy(scratch, data_ + offset, got);
    return got;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gapless::checkpoint::Verifier kStranger = [] {
    gapless::identity::PublicKey k;
    k.fill(0x42);
    return *gapless::checkpoint::ParseVerifierKey(
        gapless::checkpoint::FormatVerifierKey("gapless/collector/x", k));
  }();
  Bytes file(data, size);
  if (gapless::archive::IsEncrypted(file)) {
    // The encrypted header's parser: nobody encrypted anything to this identity.
    static const gapless::archive::Identity kIdentity = *gapless::archive::Identity::Generate();
    uint64_t plain = 0;
    Check(!gapless::archive::OpenDecrypted(file, size, kIdentity, &plain).ok());
    return 0;
  }
  // The agents' keys are strangers too: an agent checkpoint's signature is checked (the
  // seed corpus names agent web-01), never accepted.
  static const gapless::identity::EnrolledKeys kAgents = [] {
    gapless::identity::PublicKey k;
    k.fill(0x24);
    return gapless::identity::EnrolledKeys{{"web-01", k}};
  }();
  auto r = gapless::archive::VerifyArchive(file, size, kStranger, kAgents);
  if (!r.ok()) return 0;
  Check(!r->sealed);
  Check(r->verdict != gapless::verify::Verdict::kClean);
  for (const auto& s : r->streams) Check(s.report.agent_checkpoints_verified == 0);
  return 0;
}
