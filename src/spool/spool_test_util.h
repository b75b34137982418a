// Helpers shared by the spool tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "env/fault_injection_env.h"
#include "spool/spool.h"

namespace gapless::spool::testing {

inline constexpr char kDir[] = "/spool";

// A deterministic payload whose size varies with i (0 to ~300 bytes).
inline std::string Payload(uint64_t i) {
  std::string s = "record-" + std::to_string(i) + "|";
  s.append((i * 37) % 290, static_cast<char>('a' + i % 26));
  return s;
}

inline Options SmallOptions() {
  Options o;
  o.segment_bytes = 4096;
  o.quota_bytes = 1 << 20;
  o.max_record_bytes = 1024;
  return o;
}

// Every durable record from the oldest retained one, in order.
inline std::vector<Record> ReadAll(Spool* spool) {
  std::vector<Record> out;
  auto reader = spool->NewReader(spool->oldest_seq());
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return out;
  Record r;
  for (;;) {
    StatusOr<bool> more = (*reader)->Next(&r);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    out.push_back(r);
  }
  return out;
}

inline std::vector<LossRecord> LossRecords(const std::vector<Record>& records) {
  std::vector<LossRecord> out;
  for (const Record& r : records) {
    if (r.type != FrameType::kLoss) continue;
    auto loss = LossRecord::Decode(r.payload);
    EXPECT_TRUE(loss.ok());
    if (loss.ok()) out.push_back(*loss);
  }
  return out;
}

inline std::unique_ptr<Spool> OpenOrDie(env::Env* env, const Options& options,
                                        RecoveryReport* report = nullptr) {
  auto spool = Spool::Open(env, kDir, options, report);
  EXPECT_TRUE(spool.ok()) << spool.status().ToString();
  return spool.ok() ? std::move(*spool) : nullptr;
}

}  // namespace gapless::spool::testing
