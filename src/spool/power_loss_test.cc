// Random sequences of append / sync / crash through the fault-injecting env. After every
// crash: every record the spool reported durable is present and intact, no seq is
// reused, recovery reports no corruption (a crash only ever tears the tail), and the
// Merkle root covers exactly the records read back.
//
// GAPLESS_POWER_LOSS_ITERATIONS overrides the number of seeded runs (default 2000).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>

#include "env/fault_injection_env.h"
#include "merkle/merkle.h"
#include "spool/spool_test_util.h"

namespace gapless::spool {
namespace {

using testing::kDir;

int Iterations() {
  const char* v = std::getenv("GAPLESS_POWER_LOSS_ITERATIONS");
  return v != nullptr ? std::atoi(v) : 2000;
}

class PowerLossModel {
 public:
  explicit PowerLossModel(uint64_t seed) : env_(seed), rng_(seed) {
    options_ = testing::SmallOptions();
    options_.segment_bytes = 4096 + rng_() % 8192;
    options_.frontier_interval_records = 1 + rng_() % 64;
  }

  void Run() {
    Reopen(/*power_loss=*/false);
    const int ops = 20 + static_cast<int>(rng_() % 200);
    for (int i = 0; i < ops && !::testing::Test::HasFatalFailure(); ++i) Step();
    Reopen(/*power_loss=*/true);
  }

 private:
  void Step() {
    const uint64_t op = rng_() % 100;
    if (op < 60) {
      std::string payload(rng_() % 400, static_cast<char>('a' + rng_() % 26));
      payload += "#" + std::to_string(appended_++);
      auto r = spool_->Append(payload);
      if (r.ok()) {
        ASSERT_FALSE(r->dropped);
        written_[r->seq] = payload;
      } else {
        ASSERT_TRUE(faulted_) << r.status().ToString();
      }
    } else if (op < 80) {
      if (spool_->Sync().ok()) MarkDurable();
    } else if (op < 85) {
      env_.SetSyncFailure(true);  // one fsync fails; the spool must go sticky
      Status s = spool_->Sync();
      env_.SetSyncFailure(false);
      if (!s.ok()) faulted_ = true;
    } else if (op < 88) {
      env_.SetCapacity(env_.UsedBytes() + rng_() % 2000);  // disk fills up
      Status s = spool_->Sync();
      if (!s.ok()) faulted_ = true;
      MarkDurableIf(s);
      env_.SetCapacity(~0ull);
    } else if (op < 95) {
      Reopen(/*power_loss=*/true);
    } else {
      Reopen(/*power_loss=*/false);
    }
  }

  void MarkDurable() { durable_ = spool_->durable_size(); }
  void MarkDurableIf(const Status& s) {
    if (s.ok()) MarkDurable();
  }

  void Reopen(bool power_loss) {
    if (spool_) {
      if (power_loss) {
        env_.SimulatePowerLoss();
      } else {
        env_.SimulateProcessCrash();  // kill -9: written bytes stay in the page cache
      }
      spool_.reset();  // its Close() fails harmlessly: its handles are dead
    }
    RecoveryReport report;
    spool_ = testing::OpenOrDie(&env_, options_, &report);
    ASSERT_NE(spool_, nullptr);
    faulted_ = false;
    ASSERT_TRUE(report.damage.empty())
        << "a crash must only tear the tail; damage at " << report.damage[0].segment << " offset "
        << report.damage[0].offset << ": " << report.damage[0].reason;
    ASSERT_TRUE(report.merkle_known);
    ASSERT_GE(report.next_seq, durable_) << "a durable seq would be reused";
    Verify();
    durable_ = spool_->durable_size();
    // Whatever survived beyond what was reported durable is now durable too; what did
    // not survive may have its seq reassigned (it never left the host).
    std::map<uint64_t, std::string> kept;
    for (const auto& [seq, payload] : written_) {
      if (seq < durable_) kept[seq] = payload;
    }
    written_ = std::move(kept);
  }

  void Verify() {
    std::vector<Record> records = testing::ReadAll(spool_.get());
    std::map<uint64_t, const Record*> by_seq;
    merkle::CompactRange tree;
    for (const Record& r : records) {
      by_seq[r.seq] = &r;
      tree.Append(RecordLeafHash(r.type, r.payload));
    }
    ASSERT_EQ(records.size(), spool_->durable_size()) << "seqs must be dense from 0";
    for (const auto& [seq, payload] : written_) {
      if (seq >= durable_) continue;
      auto it = by_seq.find(seq);
      ASSERT_NE(it, by_seq.end()) << "durable record " << seq << " lost";
      ASSERT_EQ(it->second->payload, payload) << "durable record " << seq << " changed";
    }
    auto cp = spool_->DurableCheckpoint();
    ASSERT_TRUE(cp.ok());
    ASSERT_EQ(cp->size, tree.size());
    ASSERT_EQ(cp->root, tree.Root());
  }

  env::FaultInjectionEnv env_;
  std::mt19937_64 rng_;
  Options options_;
  std::unique_ptr<Spool> spool_;
  std::map<uint64_t, std::string> written_;  // seq -> payload, for appends that succeeded
  uint64_t durable_ = 0;                     // records [0, durable_) were reported durable
  uint64_t appended_ = 0;
  bool faulted_ = false;
};

TEST(PowerLoss, RandomAppendSyncCrashSequences) {
  const int n = Iterations();
  for (int seed = 1; seed <= n; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    PowerLossModel(static_cast<uint64_t>(seed)).Run();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace gapless::spool
