// Spool throughput beside the limits it runs into, measured in the same run:
//   - raw sequential write + fdatasync of the same disk (the I/O ceiling),
//   - SHA-256 and CRC32C speed (the CPU ceiling per record),
//   - the RFC 9162 leaf hash of a 256-byte record,
//   - spool appends of 256-byte records made durable with group commit (one fsync per
//     batch) and with one fsync per record.
// Usage: spool_bench [--bench-dir=DIR] [Google Benchmark flags]. Results in
// docs/benchmarks.md. This is not a test: nothing here asserts a speed.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "base/sha256.h"
#include "env/env.h"
#include "spool/spool.h"

namespace {

std::string g_dir = "./build/bench-data";
constexpr size_t kRecordBytes = 256;

std::string FreshDir(const std::string& name) {
  std::string dir = g_dir + "/" + name;
  (void)std::system(("rm -rf '" + dir + "'").c_str());
  (void)gapless::env::Env::Posix()->CreateDir(dir);
  return dir;
}

void BM_RawSequentialWrite(benchmark::State& state) {
  const size_t chunk = 1 << 20;
  const int chunks_per_sync = static_cast<int>(state.range(0));
  std::string buf(chunk, 'x');
  std::string path = FreshDir("raw") + "/file";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int n = 0;
  size_t written = 0;
  for (auto _ : state) {
    if (::write(fd, buf.data(), chunk) != static_cast<ssize_t>(chunk)) state.SkipWithError("write");
    written += chunk;
    if (++n % chunks_per_sync == 0) ::fdatasync(fd);
    if (written >= (512u << 20)) {  // keep the file bounded
      ::ftruncate(fd, 0);
      ::lseek(fd, 0, SEEK_SET);
      written = 0;
    }
  }
  ::fdatasync(fd);
  ::close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * chunk));
}
BENCHMARK(BM_RawSequentialWrite)->Arg(2)->Arg(16)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Sha256(benchmark::State& state) {
  std::string data(static_cast<size_t>(state.range(0)), 'a');
  for (auto _ : state) benchmark::DoNotOptimize(gapless::Sha256::Digest(data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_Sha256)->Arg(kRecordBytes)->Arg(64 << 10);

void BM_Crc32c(benchmark::State& state) {
  std::string data(static_cast<size_t>(state.range(0)), 'a');
  for (auto _ : state) benchmark::DoNotOptimize(gapless::crc32c::Value(data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_Crc32c)->Arg(kRecordBytes)->Arg(64 << 10);

void BM_LeafHash(benchmark::State& state) {
  std::string data(kRecordBytes, 'a');
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        gapless::spool::RecordLeafHash(gapless::spool::FrameType::kData, data));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_LeafHash);

// Appends of 256-byte records; every `batch` records one Sync makes them all durable.
// A required cursor follows the durable size so finished segments are removed and the
// quota never binds.
void BM_SpoolAppendDurable(benchmark::State& state) {
  const int64_t batch = state.range(0);
  gapless::spool::Options o;
  auto spool = gapless::spool::Spool::Open(gapless::env::Env::Posix(), FreshDir("spool"), o);
  if (!spool.ok()) {
    state.SkipWithError(spool.status().ToString().c_str());
    return;
  }
  auto& s = *spool;
  (void)s->AddCursor("bench", true);
  std::string payload(kRecordBytes, 'r');
  int64_t n = 0;
  for (auto _ : state) {
    std::memcpy(payload.data(), &n, sizeof(n));  // distinct records
    auto r = s->Append(payload);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    if (++n % batch == 0) {
      if (!s->Sync().ok()) state.SkipWithError("sync");
      if (n % (batch * 64) == 0) (void)s->AdvanceCursor("bench", s->durable_size());
    }
  }
  if (!s->Sync().ok()) state.SkipWithError("sync");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
  state.counters["syncs"] = static_cast<double>(s->stats().syncs);
}
BENCHMARK(BM_SpoolAppendDurable)
    ->Arg(1)
    ->Arg(64)
    ->Arg(1024)
    ->Arg(8192)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--bench-dir=", 12) == 0) {
      g_dir = argv[i] + 12;
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  (void)gapless::env::Env::Posix()->CreateDir(g_dir);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
