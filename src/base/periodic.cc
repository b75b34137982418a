#include "base/periodic.h"

#include <chrono>

namespace gapless {

PeriodicWorker::PeriodicWorker(const Options& options, std::function<void(bool)> round)
    : options_(options), round_(std::move(round)), thread_([this] { Loop(); }) {}

PeriodicWorker::~PeriodicWorker() { Stop(); }

void PeriodicWorker::Wake() {
  MutexLock lock(&mu_);
  woken_ = true;
  cv_.Signal();
}

void PeriodicWorker::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.Signal();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PeriodicWorker::Loop() {
  using Clock = std::chrono::steady_clock;
  for (;;) {
    bool stopping = false;
    {
      MutexLock lock(&mu_);
      const auto due = Clock::now() + std::chrono::milliseconds(options_.interval_ms);
      while (!stop_ && !woken_) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
        if (left <= 0) break;
        cv_.WaitFor(&mu_, left);
      }
      woken_ = false;
      stopping = stop_;
    }
    if (stopping && !options_.final_round) return;
    round_(stopping);
    if (stopping) return;
  }
}

}  // namespace gapless
