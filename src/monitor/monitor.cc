#include "monitor/monitor.h"

#include <cstdlib>

namespace gapless::monitor {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::string Secs(int64_t ns) { return std::to_string(ns / kSecond) + " s"; }

}  // namespace

Monitors::Monitors(alert::Alerts* alerts, env::Clock* clock, MonitorOptions options)
    : alerts_(alerts), clock_(clock), options_(options) {}

Monitors::Stream& Monitors::At(const std::string& agent, const std::string& epoch) {
  auto [it, added] = streams_.try_emplace(agent + "/" + epoch);
  if (added) it->second.stored_moved_ns = clock_->NowNanos();
  return it->second;
}

void Monitors::Apply(const std::vector<Change>& changes) {
  if (alerts_ == nullptr) return;
  for (const Change& c : changes) {
    if (c.fire) {
      alerts_->Fire(c.name, c.subject, c.severity, c.summary, c.evidence);
    } else {
      alerts_->Resolve(c.name, c.subject, c.summary);
    }
  }
}

void Monitors::OnHeartbeat(const Heartbeat& hb) {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string subject = hb.agent + "/" + hb.epoch;
    Stream& s = At(hb.agent, hb.epoch);
    const int64_t now = clock_->NowNanos();
    s.last_heartbeat_ns = now;
    s.head = hb.head_seq;
    changes.push_back({false, "agent_silent", subject, "", "heartbeats arrive again", {}});
    const int64_t skew = hb.agent_wall_ns - now;
    if (std::llabs(skew) > options_.clock_skew_s * kSecond) {
      changes.push_back({true,
                         "clock_skew",
                         subject,
                         "warning",
                         "the agent's clock is more than " + Secs(options_.clock_skew_s * kSecond) +
                             (skew > 0 ? " ahead of" : " behind") + " the collector's",
                         {{"skew_ms", std::to_string(skew / 1'000'000)},
                          {"threshold_s", std::to_string(options_.clock_skew_s)}}});
    } else {
      changes.push_back({false, "clock_skew", subject, "", "the agent's clock agrees again", {}});
    }
    if (s.head <= s.stored) {
      changes.push_back(
          {false, "delivery_stalled", subject, "", "the collector holds the agent's head", {}});
    }
  }
  Apply(changes);
}

void Monitors::OnStored(const std::string& agent, const std::string& epoch, uint64_t stored_next) {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stream& s = At(agent, epoch);
    if (stored_next == s.stored) return;
    s.stored = stored_next;
    s.stored_moved_ns = clock_->NowNanos();
    changes.push_back({false,
                       "delivery_stalled",
                       agent + "/" + epoch,
                       "",
                       "records arrive again (stored up to " + std::to_string(stored_next) + ")",
                       {}});
  }
  Apply(changes);
}

void Monitors::OnGapOpened(const std::string& agent, const std::string& epoch, uint64_t first,
                           uint64_t last) {
  std::lock_guard<std::mutex> lock(mu_);
  At(agent, epoch).gaps.try_emplace(first, last, clock_->NowNanos());
}

void Monitors::OnGapClosed(const std::string& agent, const std::string& epoch, uint64_t first) {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (At(agent, epoch).gaps.erase(first) == 0) return;
    changes.push_back({false,
                       "gap_open",
                       agent + "/" + epoch + "/" + std::to_string(first),
                       "",
                       "the missing range was filled or declared",
                       {}});
  }
  Apply(changes);
}

void Monitors::OnDeclaredLoss(const std::string& agent, const std::string& epoch, uint64_t first,
                              uint64_t last, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    At(agent, epoch).losses[first] = clock_->NowNanos();
  }
  Apply({{true,
          "declared_loss",
          agent + "/" + epoch + "/" + std::to_string(first),
          "critical",
          "the agent declared seqs " + std::to_string(first) + "-" + std::to_string(last) +
              " lost: " + reason,
          {{"first", std::to_string(first)},
           {"last", std::to_string(last)},
           {"records", std::to_string(last - first + 1)},
           {"reason", reason}}}});
}

void Monitors::Tick() {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->NowNanos();
    for (auto& [subject, s] : streams_) {
      if (s.last_heartbeat_ns != 0 &&
          now - s.last_heartbeat_ns > options_.agent_silent_s * kSecond) {
        changes.push_back({true,
                           "agent_silent",
                           subject,
                           "critical",
                           "no heartbeat for more than " + Secs(options_.agent_silent_s * kSecond),
                           {{"last_heartbeat_ns", std::to_string(s.last_heartbeat_ns)},
                            {"threshold_s", std::to_string(options_.agent_silent_s)}}});
      }
      if (s.head > s.stored && now - s.stored_moved_ns > options_.delivery_stalled_s * kSecond) {
        changes.push_back(
            {true,
             "delivery_stalled",
             subject,
             "critical",
             "the agent holds records the collector has not stored, and nothing arrived for "
             "more than " +
                 Secs(options_.delivery_stalled_s * kSecond),
             {{"agent_head", std::to_string(s.head)},
              {"stored", std::to_string(s.stored)},
              {"backlog", std::to_string(s.head - s.stored)},
              {"stored_moved_ns", std::to_string(s.stored_moved_ns)},
              {"threshold_s", std::to_string(options_.delivery_stalled_s)}}});
      }
      for (const auto& [first, gap] : s.gaps) {
        if (now - gap.second <= options_.gap_open_s * kSecond) continue;
        changes.push_back({true,
                           "gap_open",
                           subject + "/" + std::to_string(first),
                           "critical",
                           "seqs " + std::to_string(first) + "-" + std::to_string(gap.first) +
                               " missing for more than " + Secs(options_.gap_open_s * kSecond),
                           {{"first", std::to_string(first)},
                            {"last", std::to_string(gap.first)},
                            {"opened_ns", std::to_string(gap.second)}}});
      }
      for (auto it = s.losses.begin(); it != s.losses.end();) {
        if (now - it->second <= options_.declared_loss_hold_s * kSecond) {
          ++it;
          continue;
        }
        changes.push_back({false,
                           "declared_loss",
                           subject + "/" + std::to_string(it->first),
                           "",
                           "held for " + Secs(options_.declared_loss_hold_s * kSecond),
                           {}});
        it = s.losses.erase(it);
      }
    }
  }
  Apply(changes);
}

}  // namespace gapless::monitor
