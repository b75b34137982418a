// Pacing for accept loops (issue 16 item 7). At the descriptor limit accept fails at once
// (EMFILE) with the connection still waiting in the backlog: re-arming at once is a busy
// loop that burns a core and writes a log line per attempt. An AcceptPacer says how long
// to wait before the next accept (10 ms, doubling to 1 s while failures go on) and logs
// at most one line per 10 s, with how many failures it stands for.
//
// Thread contract: not thread-safe; one accept loop owns it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "base/log.h"

namespace gapless {

class AcceptPacer {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AcceptPacer(std::string what) : what_(std::move(what)) {}

  // An accept failed with `error`: the wait before the next one.
  std::chrono::milliseconds Failed(const std::string& error, Clock::time_point now = Clock::now()) {
    delay_ = delay_.count() == 0 ? std::chrono::milliseconds(10)
                                 : std::min(delay_ * 2, std::chrono::milliseconds(1000));
    ++unlogged_;
    if (now >= next_log_) {
      LogWarning(what_ + ": accept failed: " + error +
                 (unlogged_ > 1 ? " (" + std::to_string(unlogged_) + " times since the last line)"
                                : std::string()) +
                 "; accepting again in " + std::to_string(delay_.count()) + " ms" +
                 (error.find("open files") != std::string::npos
                      ? " (the descriptor limit: raise LimitNOFILE / ulimit -n)"
                      : ""));
      unlogged_ = 0;
      next_log_ = now + std::chrono::seconds(10);
    }
    return delay_;
  }
  // An accept succeeded: the next failure starts the backoff over.
  void Succeeded() { delay_ = std::chrono::milliseconds(0); }
  uint64_t unlogged() const { return unlogged_; }

 private:
  const std::string what_;
  std::chrono::milliseconds delay_{0};
  uint64_t unlogged_ = 0;
  Clock::time_point next_log_{};
};

}  // namespace gapless
