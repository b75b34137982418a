#include "base/periodic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace gapless {
namespace {

using namespace std::chrono_literals;

// Polls until pred() or 10 s; a correctness bound, not a speed target.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(PeriodicWorker, RunsARoundEveryInterval) {
  std::atomic<int> rounds{0};
  PeriodicWorker w({.interval_ms = 5, .final_round = false}, [&](bool) { ++rounds; });
  EXPECT_TRUE(Eventually([&] { return rounds >= 3; }));
}

TEST(PeriodicWorker, AWakeRunsARoundWithoutWaitingForTheInterval) {
  std::atomic<int> rounds{0};
  PeriodicWorker w({.interval_ms = 3'600'000, .final_round = false}, [&](bool) { ++rounds; });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rounds, 0);  // an hour is far away
  w.Wake();
  EXPECT_TRUE(Eventually([&] { return rounds == 1; }));
}

TEST(PeriodicWorker, StopRunsOneFinalRoundOnlyWhenAskedAndIsIdempotent) {
  std::vector<bool> seen;  // only the worker's thread writes, before Stop returns
  {
    PeriodicWorker w({.interval_ms = 3'600'000, .final_round = true},
                     [&](bool stopping) { seen.push_back(stopping); });
    w.Stop();
    w.Stop();
  }  // the destructor's Stop is a third
  EXPECT_EQ(seen, std::vector<bool>{true});

  int rounds = 0;
  {
    PeriodicWorker w({.interval_ms = 3'600'000, .final_round = false}, [&](bool) { ++rounds; });
    w.Stop();
  }
  EXPECT_EQ(rounds, 0);
}

TEST(PeriodicWorker, RoundsNeverOverlapAndStopWaitsForTheRunningOne) {
  std::atomic<int> inside{0}, most{0}, rounds{0};
  std::atomic<bool> finished_last{false};
  PeriodicWorker w({.interval_ms = 1, .final_round = true}, [&](bool stopping) {
    most = std::max(most.load(), ++inside);
    std::this_thread::sleep_for(2ms);
    ++rounds;
    --inside;
    if (stopping) finished_last = true;
  });
  std::thread waker([&] {
    for (int i = 0; i < 50; ++i) w.Wake();
  });
  waker.join();
  EXPECT_TRUE(Eventually([&] { return rounds >= 5; }));
  w.Stop();
  EXPECT_TRUE(finished_last);  // Stop returned after the final round, not before
  EXPECT_EQ(most, 1);
}

}  // namespace
}  // namespace gapless
