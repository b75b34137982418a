// A Clock that moves only when told to; for tests of anything time-dependent.
#pragma once

#include <atomic>
#include <cstdint>

#include "env/env.h"

namespace gapless::env {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_nanos = 1'700'000'000'000'000'000) : now_(start_nanos) {}
  int64_t NowNanos() const override { return now_.load(std::memory_order_relaxed); }
  int64_t MonotonicNanos() const override { return now_.load(std::memory_order_relaxed); }
  void Advance(int64_t nanos) { now_.fetch_add(nanos, std::memory_order_relaxed); }
  void Set(int64_t nanos) { now_.store(nanos, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace gapless::env
