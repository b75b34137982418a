#include "collector/auditing.h"

#include <chrono>
#include <filesystem>

#include "base/log.h"
#include "checkpoint/note.h"
#include "verify/verify.h"

namespace gapless::collector {

namespace fs = std::filesystem;

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
  a->thread_ = std::thread([p = a.get()] { p->Loop(); });
  return a;
}

Auditing::~Auditing() { Stop(); }

void Auditing::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

AuditingStats Auditing::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Auditing::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [&] { return stop_; })) {
        return;
      }
    }
    RunOnce();
  }
}

void Auditing::RunOnce() {
  std::lock_guard<std::mutex> round(round_mu_);
  verify::Options o;
  o.collector_key = *checkpoint::ParseVerifierKey(verifier_key_);  // checked at Start
  uint64_t passed = 0, failed = 0;
  std::error_code ec;
  for (const auto& a : fs::directory_iterator(fs::path(data_dir_) / "streams", ec)) {
    for (const auto& e : fs::directory_iterator(a.path(), ec)) {
      const std::string subject = a.path().filename().string() + "/" + e.path().filename().string();
      auto first = verify::VerifyStream(env::Env::Posix(), e.path(), o);
      if (first.ok() && first->verdict == verify::Verdict::kTampered) {
        first = verify::VerifyStream(env::Env::Posix(), e.path(), o);  // not a write mid-way?
      }
      if (!first.ok()) {
        LogError("audit: cannot read " + e.path().string() + ": " + first.status().ToString());
        continue;
      }
      if (first->verdict != verify::Verdict::kTampered) {
        ++passed;
        if (alerts_ != nullptr) {
          alerts_->Resolve("store_tampered", subject, "the stream verifies again");
        }
        continue;
      }
      ++failed;
      std::string list;
      for (size_t i = 0; i < first->problems.size() && i < 3; ++i) {
        list += "\n  " + first->problems[i];
      }
      LogError("audit: " + e.path().string() + " fails verification:" + list);
      if (alerts_ == nullptr) continue;
      std::vector<std::pair<std::string, std::string>> evidence{
          {"dir", e.path().string()},
          {"problems", std::to_string(first->problems.size())},
          {"records", std::to_string(first->records)}};
      for (size_t i = 0; i < first->problems.size() && i < 3; ++i) {
        evidence.push_back({"problem_" + std::to_string(i + 1), first->problems[i]});
      }
      alerts_->Fire("store_tampered", subject, "critical",
                    "the stored stream fails verification: records, leaves or checkpoints "
                    "were changed on the collector's disk (run gapless verify for the report)",
                    std::move(evidence));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.rounds++;
  stats_.streams_verified += passed;
  stats_.streams_tampered += failed;
}

}  // namespace gapless::collector
