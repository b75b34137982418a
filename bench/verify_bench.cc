// `gapless verify` throughput (issue 6): one core re-checking a collector store of
// ~250-byte records (CRC, leaf hash, comparison with the stored leaf, the Merkle tree and
// every signed checkpoint), beside SHA-256 measured in the same run, since hashing is
// most of the work. Then export and archive verification, plain and encrypted.
//   verify_bench --dir DIR [--records N] [--record-size BYTES] [--keep]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "archive/archive.h"
#include "base/crc32c.h"
#include "base/sha256.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "identity/identity.h"
#include "spool/spool_format.h"
#include "store/stream_store.h"
#include "verify/verify.h"

namespace {

using namespace gapless;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// MB/s of SHA-256 over `size`-byte messages, one at a time as the leaves are hashed.
double Sha256MBps(size_t size) {
  std::string msg(size, 'x');
  const size_t total = 256u << 20;
  Sha256 h;
  const double t0 = CpuSeconds();
  volatile uint8_t sink = 0;  // keeps the hashing from being optimised away
  for (size_t done = 0; done < total; done += size) {
    msg[0] = static_cast<char>(done);
    sink = static_cast<uint8_t>(sink ^ h.Update(msg).Finish()[0]);
  }
  const double s = CpuSeconds() - t0;
  return static_cast<double>(total) / 1e6 / s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "./build/bench-data/verify";
  uint64_t n = 4'000'000;
  size_t record_size = 250;
  bool keep = false;  // --keep: leave the store for profiling `gapless verify` on it
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--keep") == 0) keep = true;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--records") == 0) n = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--record-size") == 0) {
      record_size = std::max<size_t>(40, std::strtoull(argv[i + 1], nullptr, 10));
    }
  }
  std::filesystem::remove_all(dir);
  const std::string stream = dir + "/streams/bench/00";
  auto key = identity::SigningKey::Generate();
  auto st = store::StreamStore::Open(env::Env::Posix(), stream, spool::Epoch{}, {});
  if (!key.ok() || !st.ok()) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  // The store, as a collector fills it: batches of 4096, a checkpoint every 64 batches.
  const std::string payload(record_size, 'x');
  for (uint64_t first = 0; first < n; first += 4096) {
    const uint32_t count = static_cast<uint32_t>(std::min<uint64_t>(4096, n - first));
    std::vector<std::string> payloads(count);
    std::vector<store::Record> records;
    std::vector<Hash256> leaves;
    for (uint32_t i = 0; i < count; ++i) {
      payloads[i] = "bench record " + std::to_string(first + i) + " " + payload;
      payloads[i].resize(record_size, 'x');
    }
    for (const std::string& p : payloads) {
      records.push_back({spool::FrameType::kData, crc32c::Value(p), p});
      leaves.push_back(spool::RecordLeafHash(spool::FrameType::kData, p));
    }
    if (!(*st)->Append(store::BatchPosition{first, false}, records, leaves).ok() ||
        !(*st)->Commit().ok()) {
      return 1;
    }
    if ((first / 4096) % 64 == 63 || first + count == n) {
      checkpoint::Checkpoint c;
      c.origin = checkpoint::CollectorOrigin("c", "bench", "00");
      c.size = (*st)->committed_size();
      c.root = (*st)->committed_root();
      auto note =
          checkpoint::SignNote(checkpoint::FormatCheckpoint(c), "gapless/collector/c", **key);
      if (!note.ok() || !(*st)->AppendCheckpoint(*note).ok()) return 1;
    }
  }
  st->reset();

  verify::Options o;
  o.collector_key = *checkpoint::ParseVerifierKey(
      checkpoint::FormatVerifierKey("gapless/collector/c", (*key)->public_key()));
  const double sha_small = Sha256MBps(record_size + 1);
  const double sha_large = Sha256MBps(64 << 10);
  const double t0 = Now();
  const double c0 = CpuSeconds();
  auto r = verify::VerifyStream(env::Env::Posix(), stream, o);
  const double cpu = CpuSeconds() - c0;
  const double wall = Now() - t0;
  if (!r.ok() || r->verdict != verify::Verdict::kClean) {
    std::fprintf(stderr, "verify did not find the store clean\n");
    return 1;
  }
  const double mb = static_cast<double>(r->record_bytes) / 1e6;
  std::printf("store               %llu records of %zu B, %.0f MB of records, %llu checkpoints\n",
              static_cast<unsigned long long>(r->records), record_size, mb,
              static_cast<unsigned long long>(r->checkpoints));
  std::printf(
      "verify              %.0f MB/s of records per CPU-second (%.2f s CPU, %.2f s wall,"
      " one thread), %.2f M records/s\n",
      mb / cpu, cpu, wall, static_cast<double>(r->records) / cpu / 1e6);
  std::printf("SHA-256             %.0f MB/s on %zu-byte messages, %.0f MB/s on 64 KiB\n",
              sha_small, record_size + 1, sha_large);
  std::printf("ratio               verify / SHA-256 of the same message size: %.2f\n",
              mb / cpu / sha_small);

  // Export the same stream as an archive, plain and encrypted to one recipient, and
  // verify the archive (one thread each; the store and archives in the page cache).
  if (!(*key)->Save(dir + "/collector.key").ok()) return 1;
  auto recipient = archive::Identity::Generate();
  if (!recipient.ok()) return 1;
  for (const bool encrypted : {false, true}) {
    archive::ExportOptions eo;
    eo.data_dir = dir;
    eo.out = dir + (encrypted ? "/encrypted.gla" : "/plain.gla");
    if (encrypted) eo.recipients = {recipient->recipient()};
    const double e0 = CpuSeconds();
    auto exported = archive::Export(eo);
    const double ecpu = CpuSeconds() - e0;
    const double v0 = CpuSeconds();
    auto checked = archive::VerifyArchive(eo.out, o.collector_key, &*recipient);
    const double vcpu = CpuSeconds() - v0;
    if (!exported.ok() || !checked.ok() || checked->verdict != verify::Verdict::kClean) {
      std::fprintf(stderr, "archive round trip failed\n");
      return 1;
    }
    std::printf("%-19s %.0f MB/s of records per CPU-second to export, %.0f MB/s to verify\n",
                encrypted ? "encrypted archive" : "archive", mb / ecpu, mb / vcpu);
    std::filesystem::remove(eo.out);
  }
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
