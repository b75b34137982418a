#include "collector/auditing.h"

#include "base/log.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "verify/verify.h"

namespace gapless::collector {

StatusOr<std::unique_ptr<Auditing>> Auditing::Start(const std::string& data_dir,
                                                    const std::string& verifier_key,
                                                    int64_t interval_ms, alert::Alerts* alerts) {
  if (interval_ms <= 0) return InvalidArgumentError("audit: the interval must be positive");
  if (auto v = checkpoint::ParseVerifierKey(verifier_key); !v.ok()) {
    return InvalidArgumentError("audit: " + v.status().message());
  }
  std::unique_ptr<Auditing> a(new Auditing);
  a->data_dir_ = data_dir;
  a->verifier_key_ = verifier_key;
  a->interval_ms_ = interval_ms;
  a->alerts_ = alerts;
  a->worker_ = std::make_unique<PeriodicWorker>(
      PeriodicWorker::Options{.interval_ms = interval_ms, .final_round = false},
      [p = a.get()](bool) { p->RunOnce(); });
  return a;
}

Auditing::~Auditing() { Stop(); }

void Auditing::Stop() {
  if (worker_ != nullptr) worker_->Stop();
}

AuditingStats Auditing::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void Auditing::RunOnce() {
  MutexLock round(&round_mu_);
  verify::Options o;
  o.collector_key = *checkpoint::ParseVerifierKey(verifier_key_);  // checked at Start
  uint64_t passed = 0, failed = 0;
  auto streams = store::Layout(data_dir_).ListStreams(env::Env::Posix());
  if (!streams.ok()) LogError("audit: " + streams.status().ToString());
  for (const store::StreamRef& stream : streams.ok() ? *streams : std::vector<store::StreamRef>{}) {
    switch (AuditStream(stream, o)) {
      case Outcome::kPassed:
        ++passed;
        break;
      case Outcome::kTampered:
        ++failed;
        break;
      case Outcome::kUnreadable:
        break;
    }
  }
  MutexLock lock(&mu_);
  stats_.rounds++;
  stats_.streams_verified += passed;
  stats_.streams_tampered += failed;
}

Auditing::Outcome Auditing::AuditStream(const store::StreamRef& stream, const verify::Options& o) {
  const std::string subject = stream.agent + "/" + stream.epoch;
  auto first = verify::VerifyStream(env::Env::Posix(), stream.dir, o);
  if (first.ok() && first->verdict == verify::Verdict::kTampered) {
    first = verify::VerifyStream(env::Env::Posix(), stream.dir, o);  // not a write mid-way?
  }
  if (!first.ok()) {
    LogError("audit: cannot read " + stream.dir + ": " + first.status().ToString());
    return Outcome::kUnreadable;
  }
  if (first->verdict != verify::Verdict::kTampered) {
    if (alerts_ != nullptr)
      alerts_->Resolve("store_tampered", subject, "the stream verifies again");
    return Outcome::kPassed;
  }
  std::string list;
  for (size_t i = 0; i < first->problems.size() && i < 3; ++i) list += "\n  " + first->problems[i];
  LogError("audit: " + stream.dir + " fails verification:" + list);
  if (alerts_ == nullptr) return Outcome::kTampered;
  std::vector<std::pair<std::string, std::string>> evidence{
      {"dir", stream.dir},
      {"problems", std::to_string(first->problems.size())},
      {"records", std::to_string(first->records)}};
  for (size_t i = 0; i < first->problems.size() && i < 3; ++i) {
    evidence.push_back({"problem_" + std::to_string(i + 1), first->problems[i]});
  }
  alerts_->Fire("store_tampered", subject, "critical",
                "the stored stream fails verification: records, leaves or checkpoints "
                "were changed on the collector's disk (run gapless verify for the report)",
                std::move(evidence));
  return Outcome::kTampered;
}

}  // namespace gapless::collector
