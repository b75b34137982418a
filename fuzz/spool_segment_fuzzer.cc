// Fuzzes spool recovery and reading. Segment files are outside input: disks rot, files
// get copied and truncated. Whatever the bytes, Open and the reader must not crash, and
// what they return must be consistent.
//
// Byte 0 picks the mode:
//   even: the rest is the contents of segment 0 (raw);
//   odd:  the rest drives a real spool: records are written from it, then bytes of the
//         segment files are overwritten at positions it chooses — so the fuzzer reaches
//         code behind the CRCs, which it could never forge by itself.
#include <cstddef>
#include <cstdint>
#include <string>

#include "env/fault_injection_env.h"
#include "spool/spool.h"

namespace {

using gapless::spool::Options;
using gapless::spool::Spool;

constexpr char kDir[] = "/s";

Options FuzzOptions() {
  Options o;
  o.segment_bytes = 4096;
  o.quota_bytes = 1 << 20;
  o.max_record_bytes = 1024;
  o.frontier_interval_records = 4;
  return o;
}

void WriteThenCorrupt(gapless::env::FaultInjectionEnv* env, std::string_view in) {
  {
    auto spool = Spool::Open(env, kDir, FuzzOptions());
    if (!spool.ok()) __builtin_trap();
    size_t n = in.empty() ? 0 : static_cast<uint8_t>(in[0]) % 64;
    if (!in.empty()) in.remove_prefix(1);
    for (size_t i = 0; i < n && !in.empty(); ++i) {
      size_t len = std::min<size_t>(static_cast<uint8_t>(in[0]), in.size() - 1);
      (void)(*spool)->Append(in.substr(1, len));
      in.remove_prefix(1 + len);
    }
    (void)(*spool)->Close();
  }
  const std::string seg = std::string(kDir) + "/" + gapless::spool::SegmentFileName(0);
  std::string bytes = env->Contents(seg);
  while (in.size() >= 3 && !bytes.empty()) {  // (position u16, value u8) triples
    size_t pos = (static_cast<uint8_t>(in[0]) | (static_cast<uint8_t>(in[1]) << 8)) % bytes.size();
    bytes[pos] = in[2];
    in.remove_prefix(3);
  }
  env->SetDurableContents(seg, bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  gapless::env::FaultInjectionEnv env;
  (void)env.CreateDir(kDir);
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    env.SetDurableContents(std::string(kDir) + "/" + gapless::spool::SegmentFileName(0),
                           std::string(in));
  } else {
    WriteThenCorrupt(&env, in);
  }
  gapless::spool::RecoveryReport report;
  auto spool = Spool::Open(&env, kDir, FuzzOptions(), &report);
  if (!spool.ok()) return 0;  // e.g. a newer format version: refused with a reason
  auto reader = (*spool)->NewReader((*spool)->oldest_seq());
  if (!reader.ok()) __builtin_trap();
  gapless::spool::Record r;
  uint64_t last = 0;
  bool first = true;
  for (;;) {
    auto more = (*reader)->Next(&r);
    if (!more.ok() || !*more) break;
    if (!first && r.seq <= last) __builtin_trap();  // seqs strictly increase
    if (r.seq >= (*spool)->next_seq()) __builtin_trap();
    last = r.seq;
    first = false;
  }
  // The spool stays writable after recovering from anything.
  auto appended = (*spool)->Append("after");
  if (!appended.ok() || appended->seq < report.next_seq) __builtin_trap();
  if (!(*spool)->Sync().ok()) __builtin_trap();
  return 0;
}
