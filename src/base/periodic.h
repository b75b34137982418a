// PeriodicWorker: the one loop behind the collector's periodic jobs (archiving, the
// self-audit, witnessing): a thread of its own that runs a round every interval, or at
// once when woken, and — if asked — one last round when stopped. Started and stopped the
// same way everywhere, so each job is a function, not a copy of the thread, the mutex
// and the stop flag.
//
// Thread contract: Wake and Stop may be called from any thread. The round function runs
// only on the worker's thread, never twice at once; it must not call Stop.
#pragma once

#include <cstdint>
#include <functional>
#include <thread>

#include "base/mutex.h"

namespace gapless {

class PeriodicWorker {
 public:
  struct Options {
    int64_t interval_ms = 1000;  // between the end of one round and the next; > 0
    bool final_round = false;    // Stop runs one last round (with stopping = true)
  };
  // round(stopping) is called after each interval or Wake, and once with stopping = true
  // at Stop when final_round is set.
  PeriodicWorker(const Options& options, std::function<void(bool stopping)> round);
  ~PeriodicWorker();  // Stop()
  PeriodicWorker(const PeriodicWorker&) = delete;
  PeriodicWorker& operator=(const PeriodicWorker&) = delete;

  // Runs a round as soon as the current one (if any) ends; wakes are not counted.
  void Wake();
  // Ends the thread after the running round (and the final one, if set). Idempotent.
  void Stop();

 private:
  void Loop();

  const Options options_;
  const std::function<void(bool)> round_;
  Mutex mu_;
  CondVar cv_;
  bool woken_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace gapless
