#include "monitor/monitor.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>

#include "base/log.h"

namespace gapless::monitor {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMinute = 60 * kSecond;

std::string Secs(int64_t ns) { return std::to_string(ns / kSecond) + " s"; }

}  // namespace

Monitors::Monitors(alert::Alerts* alerts, env::Clock* clock, MonitorOptions options,
                   ledger::Ledger* ledger)
    : alerts_(alerts), clock_(clock), options_(options), ledger_(ledger) {}

Monitors::Stream& Monitors::At(const std::string& agent, const std::string& epoch) {
  auto [it, added] = streams_.try_emplace(agent + "/" + epoch);
  if (added) it->second.stored_moved_ns = it->second.first_seen_ns = clock_->NowNanos();
  if (ledger_ != nullptr) dirty_streams_.insert(it->first);
  return it->second;
}

Status Monitors::Load() {
  if (ledger_ == nullptr) return Status::Ok();
  const int64_t now = clock_->NowNanos();
  auto c = ledger_->Read(now / kMinute - (options_.baseline.history_days + 1) * kMinutesPerDay);
  if (!c.ok()) return c.status();
  std::lock_guard<std::mutex> lock(mu_);
  for (const ledger::CountRow& r : c->counts) {
    sources_[r.agent + "/" + r.source].history.Add(r.minute, r.count);
  }
  std::map<std::string, int64_t> newest;  // agent -> when its newest epoch was last heard
  for (const ledger::StreamRow& r : c->streams) {
    Stream& s = streams_[r.agent + "/" + r.epoch];
    s.first_seen_ns = r.first_seen_ns;
    s.last_heartbeat_ns = r.last_heartbeat_ns != 0 ? now : 0;
    s.agent_wall_ns = r.agent_wall_ns;
    s.spool_bytes = r.spool_bytes;
    s.spool_quota = r.spool_quota;
    s.head = r.head;
    s.stored = r.stored;
    s.stored_moved_ns = now;
    const int64_t heard = std::max(r.first_seen_ns, r.last_heartbeat_ns);
    if (auto [it, added] = newest.try_emplace(r.agent, heard); added || heard > it->second) {
      it->second = heard;
      epochs_[r.agent] = r.epoch;
    }
  }
  for (const ledger::GapRow& g : c->gaps) {
    if (g.closed_ns == 0) streams_[g.agent + "/" + g.epoch].gaps[g.first] = {g.last, g.opened_ns};
  }
  return Status::Ok();
}

// mu_ held. A stream of a new epoch of `agent`: its previous epoch is over, and what the
// collector never stored of it is gone with the old spool.
std::optional<Monitors::Change> Monitors::NoteEpoch(const std::string& agent,
                                                    const std::string& epoch) {
  auto [it, first] = epochs_.try_emplace(agent, epoch);
  if (first || it->second == epoch) return std::nullopt;
  const std::string old = it->second;
  it->second = epoch;
  const Stream& s = At(agent, old);
  if (s.head <= s.stored) return std::nullopt;
  return Change{true,
                "epoch_reset",
                agent + "/" + old,
                "critical",
                "the agent started epoch " + epoch + " while seqs " + std::to_string(s.stored) +
                    "-" + std::to_string(s.head - 1) + " of epoch " + old +
                    " were never stored: its spool was lost or replaced",
                {{"old_epoch", old},
                 {"new_epoch", epoch},
                 {"stored", std::to_string(s.stored)},
                 {"agent_head", std::to_string(s.head)},
                 {"missing", std::to_string(s.head - s.stored)}}};
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
    if (auto reset = NoteEpoch(hb.agent, hb.epoch)) changes.push_back(std::move(*reset));
    Stream& s = At(hb.agent, hb.epoch);
    const int64_t now = clock_->NowNanos();
    s.last_heartbeat_ns = now;
    s.agent_wall_ns = hb.agent_wall_ns;
    s.spool_bytes = hb.spool_bytes;
    s.spool_quota = hb.spool_quota;
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
    // Only the destinations of the latest heartbeat are kept (at most 64, wire.h): one a
    // reload removed is no longer judged, and names never pile up.
    for (auto it = s.others.begin(); it != s.others.end();) {
      const bool listed = std::any_of(hb.destinations.begin(), hb.destinations.end(),
                                      [&](const auto& d) { return d.first == it->first; });
      if (listed && it->first != hb.to) {
        ++it;
        continue;
      }
      changes.push_back({false,
                         "destination_stalled",
                         subject + "/" + it->first,
                         "",
                         "destination " + it->first + " is no longer among the agent's others",
                         {}});
      it = s.others.erase(it);
    }
    for (const auto& [name, acked] : hb.destinations) {
      if (name == hb.to) continue;
      auto [it, added] = s.others.try_emplace(name, acked, now);
      const bool moved = !added && acked != it->second.first;
      if (moved) it->second = {acked, now};
      if (moved || acked >= s.head) {
        changes.push_back(
            {false,
             "destination_stalled",
             subject + "/" + name,
             "",
             "destination " + name + " acknowledges again (at " + std::to_string(acked) + ")",
             {}});
      }
    }
  }
  Apply(changes);
}

void Monitors::OnStored(const std::string& agent, const std::string& epoch, uint64_t stored_next) {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto reset = NoteEpoch(agent, epoch)) changes.push_back(std::move(*reset));
    Stream& s = At(agent, epoch);
    if (stored_next != s.stored) Moved(agent + "/" + epoch, &s, stored_next, &changes);
  }
  Apply(changes);
}

// mu_ held. The stored point of `subject` moved to stored_next.
void Monitors::Moved(const std::string& subject, Stream* s, uint64_t stored_next,
                     std::vector<Change>* changes) {
  s->stored = stored_next;
  s->stored_moved_ns = clock_->NowNanos();
  changes->push_back({false,
                      "delivery_stalled",
                      subject,
                      "",
                      "records arrive again (stored up to " + std::to_string(stored_next) + ")",
                      {}});
  if (s->head > 0 && stored_next >= s->head) {
    changes->push_back({false, "epoch_reset", subject, "", "every seq was stored after all", {}});
  }
  // A missing range is filled once the stored point passes it.
  for (auto it = s->gaps.begin(); it != s->gaps.end();) {
    if (it->second.first >= stored_next) {
      ++it;
      continue;
    }
    changes->push_back({false,
                        "gap_open",
                        subject + "/" + std::to_string(it->first),
                        "",
                        "the missing range was filled",
                        {}});
    LedgerGap(subject, it->first, it->second.first, it->second.second, clock_->NowNanos());
    it = s->gaps.erase(it);
  }
}

// mu_ held. `stream` is "<agent>/<epoch>" (agent ids have no '/').
void Monitors::LedgerGap(const std::string& stream, uint64_t first, uint64_t last,
                         int64_t opened_ns, int64_t closed_ns) {
  if (ledger_ == nullptr) return;
  const size_t slash = stream.find('/');
  unwritten_.gaps.push_back(
      {stream.substr(0, slash), stream.substr(slash + 1), first, last, opened_ns, closed_ns});
}

void Monitors::OnGapOpened(const std::string& agent, const std::string& epoch, uint64_t first,
                           uint64_t last) {
  std::lock_guard<std::mutex> lock(mu_);
  if (At(agent, epoch).gaps.try_emplace(first, last, clock_->NowNanos()).second) {
    LedgerGap(agent + "/" + epoch, first, last, clock_->NowNanos(), 0);
  }
}

void Monitors::OnDeclaredLoss(const std::string& agent, const std::string& epoch, uint64_t first,
                              uint64_t last, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    At(agent, epoch).losses[first] = clock_->NowNanos();
    if (ledger_ != nullptr) {
      unwritten_.losses.push_back({agent, epoch, first, last, reason, clock_->NowNanos()});
    }
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

void Monitors::OnRecords(const std::string& agent, const std::vector<RecordSeen>& records) {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->NowNanos();
    Source* src = nullptr;
    std::string_view name, marked_source;
    int64_t marked_minute = -1;
    for (const RecordSeen& r : records) {
      if (src == nullptr || r.source != name) {
        name = r.source;
        const std::string subject = agent + "/" + std::string(name);
        src = &sources_[subject];
        if (src->silent) {
          src->silent = false;
          changes.push_back({false, "source_silent", subject, "", "records arrive again", {}});
        }
      }
      // Counted in the minute the agent read it; never in the collector's future.
      const int64_t observed = r.observed_ns > 0 ? std::min(r.observed_ns, now) : now;
      src->history.Add(observed / kMinute, 1);
      if (ledger_ != nullptr && (observed / kMinute != marked_minute || name != marked_source)) {
        marked_minute = observed / kMinute;
        marked_source = name;
        dirty_minutes_.emplace(agent + "/" + std::string(name), marked_minute);
      }
      src->minute_records++;
      const int64_t event = r.event_ns != 0 ? r.event_ns : observed;
      src->minute_min_lag_ns = std::min(src->minute_min_lag_ns, now - event);
      if (event - now > options_.future_timestamps_s * kSecond) {
        src->minute_future++;
        src->minute_max_ahead_ns = std::max(src->minute_max_ahead_ns, event - now);
      }
    }
  }
  Apply(changes);
}

// mu_ held. Once a minute: the per-source rules over the minutes before `minute`.
void Monitors::EvaluateSources(int64_t minute, std::vector<Change>* changes) {
  const MonitorOptions& o = options_;
  const int64_t keep_from = minute - (o.baseline.history_days + 1) * kMinutesPerDay - 60;
  for (auto& [subject, s] : sources_) {
    s.history.Trim(keep_from);
    // The window ends a minute ago: records of the last minute may still be in flight.
    const int64_t to = minute - 1, from = to - o.volume_window_minutes;
    const auto base = s.history.Expected(from, to, o.baseline);
    const uint64_t n = s.history.Count(from, to);
    const double floor = 2 * o.volume_drop_ratio;  // a plausible low: a weekend night
    if (base && base->expected > 0) {
      const double ratio = static_cast<double>(n) / base->expected;
      if (!s.dropping && ratio < o.volume_drop_ratio && Implausible(n, floor * base->expected)) {
        s.dropping = true;
        changes->push_back(
            {true,
             "volume_drop",
             subject,
             "warning",
             "the source sends far less than its baseline: under " +
                 std::to_string(static_cast<int>(o.volume_drop_ratio * 100)) + "% for " +
                 std::to_string(o.volume_window_minutes) + " minutes",
             {{"records", std::to_string(n)},
              {"expected", std::to_string(static_cast<int64_t>(base->expected))},
              {"percent_of_baseline", std::to_string(static_cast<int>(ratio * 100))},
              {"baseline", base->method + " (" + std::to_string(base->samples) + ")"},
              {"window_minutes", std::to_string(o.volume_window_minutes)},
              {"window_end_ns", std::to_string(to * kMinute)}}});
      } else if (s.dropping && ratio >= floor) {
        s.dropping = false;
        changes->push_back(
            {false,
             "volume_drop",
             subject,
             "",
             "back to " + std::to_string(static_cast<int>(ratio * 100)) + "% of the baseline",
             {}});
      }
    }
    const int64_t silent = std::max<int64_t>(1, o.source_silent_s / 60);
    for (int64_t len : {silent, std::max<int64_t>(silent, 10), std::max<int64_t>(silent, 20),
                        std::max<int64_t>(silent, 40), std::max<int64_t>(silent, 60)}) {
      if (s.silent || s.minute_records > 0 || s.history.Count(minute - len, minute + 1) > 0) {
        break;
      }
      const auto quiet = s.history.Expected(minute - len, minute, o.baseline);
      if (!quiet || !Implausible(0, floor * quiet->expected)) continue;  // try longer
      s.silent = true;
      changes->push_back(
          {true,
           "source_silent",
           subject,
           "critical",
           "nothing from the source for " + Secs(len * kMinute) +
               ", where its baseline expects records",
           {{"silent_minutes", std::to_string(len)},
            {"expected", std::to_string(static_cast<int64_t>(quiet->expected))},
            {"baseline", quiet->method + " (" + std::to_string(quiet->samples) + ")"},
            {"threshold_s", std::to_string(o.source_silent_s)}}});
    }
    if (s.minute_records > 0) {
      const bool lagging = s.minute_min_lag_ns > o.ingestion_lag_s * kSecond;
      if (lagging && !s.lagging) {
        changes->push_back({true,
                            "ingestion_lag",
                            subject,
                            "warning",
                            "even the freshest record of the last minute arrived more than " +
                                Secs(o.ingestion_lag_s * kSecond) + " after its time",
                            {{"freshest_lag_ms", std::to_string(s.minute_min_lag_ns / 1'000'000)},
                             {"records", std::to_string(s.minute_records)},
                             {"threshold_s", std::to_string(o.ingestion_lag_s)}}});
      } else if (!lagging && s.lagging) {
        changes->push_back({false, "ingestion_lag", subject, "", "records arrive in time", {}});
      }
      s.lagging = lagging;
      const bool future = s.minute_future > 0;
      if (future && !s.future) {
        changes->push_back({true,
                            "future_timestamps",
                            subject,
                            "warning",
                            "records carry event times more than " +
                                Secs(o.future_timestamps_s * kSecond) +
                                " ahead of the collector's clock",
                            {{"records", std::to_string(s.minute_future)},
                             {"of_records", std::to_string(s.minute_records)},
                             {"max_ahead_ms", std::to_string(s.minute_max_ahead_ns / 1'000'000)},
                             {"threshold_s", std::to_string(o.future_timestamps_s)}}});
      } else if (!future && s.future) {
        changes->push_back(
            {false, "future_timestamps", subject, "", "event times are plausible again", {}});
      }
      s.future = future;
    }
    s.minute_records = 0;
    s.minute_min_lag_ns = INT64_MAX;
    s.minute_future = 0;
    s.minute_max_ahead_ns = 0;
  }
}

void Monitors::OnAgentCheckpoint(const std::string& agent, const std::string& epoch, uint64_t size,
                                 bool valid, const std::string& detail) {
  if (ledger_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  unwritten_.checkpoints.push_back({agent, epoch, size, clock_->NowNanos(), valid, detail});
}

namespace {

template <typename T>
void Prepend(std::vector<T>* older, std::vector<T>* newer) {
  older->insert(older->end(), std::make_move_iterator(newer->begin()),
                std::make_move_iterator(newer->end()));
  newer->swap(*older);
}

}  // namespace

// `key` is "<agent>/<epoch>".
ledger::StreamRow Monitors::Row(const std::string& key, const Stream& s) {
  const size_t slash = key.find('/');
  return {key.substr(0, slash),
          key.substr(slash + 1),
          s.first_seen_ns,
          s.last_heartbeat_ns,
          s.agent_wall_ns,
          s.head,
          s.stored,
          s.stored_moved_ns,
          s.spool_bytes,
          s.spool_quota};
}

std::vector<ledger::StreamRow> Monitors::Streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ledger::StreamRow> out;
  for (const auto& [key, s] : streams_) out.push_back(Row(key, s));
  return out;
}

void Monitors::WriteLedger() {
  if (ledger_ == nullptr) return;
  ledger::Delta d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& key : dirty_streams_) {
      unwritten_.streams.push_back(Row(key, streams_.at(key)));
    }
    for (const auto& [key, minute] : dirty_minutes_) {
      const size_t slash = key.find('/');
      unwritten_.counts.push_back({key.substr(0, slash), key.substr(slash + 1), minute,
                                   sources_.at(key).history.Count(minute, minute + 1)});
    }
    dirty_streams_.clear();
    dirty_minutes_.clear();
    unwritten_.forget_counts_before =
        clock_->NowNanos() / kMinute - (options_.baseline.history_days + 1) * kMinutesPerDay;
    d = std::move(unwritten_);
    unwritten_ = {};
  }
  d.replace_alerts = alerts_ != nullptr;
  if (alerts_ != nullptr) {
    for (const alert::AlertEvent& e : alerts_->Firing()) {
      d.alerts.push_back({e.name, e.subject, e.severity, e.summary, e.started_ns});
    }
  }
  const Status st = ledger_->Write(d);
  if (st.ok()) {
    if (ledger_failing_) LogInfo("monitors: the ledger is written again");
    ledger_failing_ = false;
    return;
  }
  if (!ledger_failing_) LogError("monitors: " + st.ToString() + " (kept, retried each second)");
  ledger_failing_ = true;
  std::lock_guard<std::mutex> lock(mu_);  // older rows first: the newest of a key wins
  Prepend(&d.streams, &unwritten_.streams);
  Prepend(&d.gaps, &unwritten_.gaps);
  Prepend(&d.losses, &unwritten_.losses);
  Prepend(&d.checkpoints, &unwritten_.checkpoints);
  Prepend(&d.counts, &unwritten_.counts);
}

void Monitors::Tick() {
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->NowNanos();
    if (now / kMinute != evaluated_minute_) {
      if (evaluated_minute_ != 0) EvaluateSources(now / kMinute, &changes);
      evaluated_minute_ = now / kMinute;
    }
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
      for (const auto& [name, other] : s.others) {
        const auto& [acked, moved_ns] = other;
        if (s.head <= acked || now - moved_ns <= options_.delivery_stalled_s * kSecond) continue;
        changes.push_back({true,
                           "destination_stalled",
                           subject + "/" + name,
                           "critical",
                           "the agent's destination " + name +
                               " has acknowledged nothing for more than " +
                               Secs(options_.delivery_stalled_s * kSecond) +
                               " while the agent holds records it lacks (seen from another "
                               "destination's heartbeats)",
                           {{"destination", name},
                            {"agent_head", std::to_string(s.head)},
                            {"acked", std::to_string(acked)},
                            {"backlog", std::to_string(s.head - acked)},
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
  WriteLedger();
}

}  // namespace gapless::monitor
