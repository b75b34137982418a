#include "gaps_commands.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <vector>

#include "base/json_text.h"
#include "env/env.h"
#include "event/event.h"
#include "output/output.h"
#include "spool/loss_record.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::cli {
namespace {

// RFC 3339 UTC ("2026-11-22T10:00:00Z", fractions ignored) or unix seconds → unix ns.
std::optional<int64_t> ParseTime(const std::string& text) {
  int64_t secs = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
  if (ec == std::errc() && end == text.data() + text.size()) return secs * 1'000'000'000;
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  while (*rest == '.' || (*rest >= '0' && *rest <= '9')) ++rest;
  if (std::string(rest) != "Z") return std::nullopt;  // UTC only: no guessing of offsets
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
}

struct Range {
  uint64_t first = 0, last = 0;  // inclusive
  std::string why;               // declared: the LOSS reason; empty: nobody declared it
  bool declared = false;
};

struct StreamGaps {
  uint64_t lo = 0, hi = 0;  // the window as seqs [lo, hi)
  uint64_t received = 0;
  std::vector<Range> missing;
  std::vector<std::string> unsequenced;  // LOSS records without seqs in the window
};

StreamGaps Analyze(const std::string& dir, int64_t from_ns, int64_t to_ns, Status* error) {
  struct Loss {
    uint64_t first, last;
    std::string reason;
  };
  std::vector<std::pair<uint64_t, uint64_t>> present;  // ranges of stored seqs
  std::vector<Loss> losses;
  StreamGaps g;
  bool seen_in_window = false;
  uint64_t next = 0;
  *error = store::ForEachStoredRecord(
      env::Env::Posix(), dir, [&](uint64_t seq, spool::FrameType type, std::string_view p) {
        if (!present.empty() && present.back().second + 1 == seq) {
          present.back().second = seq;
        } else {
          present.emplace_back(seq, seq);
        }
        next = seq + 1;
        int64_t t = 0;
        if (type == spool::FrameType::kLoss) {
          auto loss = spool::LossRecord::Decode(p);
          if (!loss.ok()) return;
          const std::string reason(spool::LossReasonName(loss->reason));
          if (loss->has_seq_range) {
            losses.push_back({loss->first_seq, loss->last_seq, reason});
          } else if (loss->time_to_unix_ns >= from_ns && loss->time_from_unix_ns < to_ns) {
            g.unsequenced.push_back(std::to_string(loss->record_count) + " records (" +
                                    std::to_string(loss->bytes) + " bytes) lost before the " +
                                    "spool: " + reason);
          }
          t = loss->time_to_unix_ns;
        } else {
          event::Event e;
          if (!event::DecodeEvent(p, &e).ok()) return;
          t = e.observed_unix_ns;
        }
        if (t >= from_ns && t < to_ns) {
          if (!seen_in_window) g.lo = seq;
          seen_in_window = true;
          g.hi = seq + 1;
        }
      });
  // Declared gone without a LOSS record at hand (the agent's GAP_BEFORE): the gaps file.
  std::ifstream gaps_file(store::StreamFiles(dir).Gaps());
  uint64_t a = 0, b = 0;
  while (gaps_file >> a >> b) losses.push_back({a, b, "declared gone by the agent"});
  if (!seen_in_window) {
    if (from_ns == INT64_MIN && to_ns == INT64_MAX) g.hi = next;
    return g;
  }
  if (from_ns == INT64_MIN) g.lo = 0;
  if (to_ns == INT64_MAX) g.hi = next;
  // Missing = [lo, hi) minus present; each missing seq declared or not.
  uint64_t at = g.lo;
  auto add_missing = [&](uint64_t first, uint64_t last) {
    for (uint64_t q = first; q <= last;) {
      // LOSS records (with their reason) come first in `losses`, the gaps file after: the
      // first range covering q names it, up to where an earlier range starts.
      size_t k = losses.size();
      for (size_t i = 0; i < losses.size() && k == losses.size(); ++i) {
        if (losses[i].first <= q && q <= losses[i].last) k = i;
      }
      const Loss* cover = k < losses.size() ? &losses[k] : nullptr;
      uint64_t end = cover != nullptr ? std::min(last, cover->last) : last;
      for (size_t i = 0; i < std::min(k, losses.size()); ++i) {
        if (losses[i].first > q && losses[i].first <= end) end = losses[i].first - 1;
      }
      Range r{q, end, cover ? cover->reason : "", cover != nullptr};
      if (!g.missing.empty() && g.missing.back().last + 1 == q &&
          g.missing.back().declared == r.declared && g.missing.back().why == r.why) {
        g.missing.back().last = end;
      } else {
        g.missing.push_back(r);
      }
      if (end == UINT64_MAX) break;
      q = end + 1;
    }
  };
  for (const auto& [first, last] : present) {
    if (last < g.lo) continue;
    if (first >= g.hi) break;
    if (first > at) add_missing(at, first - 1);
    g.received += std::min(last, g.hi - 1) - std::max(first, g.lo) + 1;
    at = last + 1;
  }
  if (at < g.hi) add_missing(at, g.hi - 1);
  return g;
}

}  // namespace

int Gaps(const GapsFlags& f) {
  int64_t from_ns = INT64_MIN, to_ns = INT64_MAX;
  if (!f.from.empty()) {
    auto t = ParseTime(f.from);
    if (!t) {
      std::fprintf(stderr,
                   "gapless gaps: --from %s: give RFC 3339 UTC (2026-11-22T10:00:00Z) "
                   "or unix seconds\n",
                   f.from.c_str());
      return 3;
    }
    from_ns = *t;
  }
  if (!f.to.empty()) {
    auto t = ParseTime(f.to);
    if (!t) {
      std::fprintf(stderr, "gapless gaps: --to %s: give RFC 3339 UTC or unix seconds\n",
                   f.to.c_str());
      return 3;
    }
    to_ns = *t;
  }
  const store::Layout layout(f.data_dir);
  auto streams = layout.ListStreams(env::Env::Posix());
  if (Status s = streams.ok() ? layout.CheckFormat(env::Env::Posix()) : streams.status(); !s.ok()) {
    std::fprintf(stderr, "gapless gaps: %s\n", s.message().c_str());
    return 3;
  }
  int worst = 0;
  bool any = false;
  std::string json;
  for (const store::StreamRef& stream : *streams) {
    const std::string& agent = stream.agent;
    if (!f.agent.empty() && agent != f.agent) continue;
    {
      const std::string& epoch = stream.epoch;
      Status error;
      const StreamGaps g = Analyze(stream.dir, from_ns, to_ns, &error);
      any = true;
      if (!error.ok()) {
        std::fprintf(stderr, "gapless gaps: %s/%s: %s\n", agent.c_str(), epoch.c_str(),
                     error.ToString().c_str());
        worst = 3;
        continue;
      }
      int status = g.missing.empty() && g.unsequenced.empty() ? 0 : 1;
      for (const Range& r : g.missing) status = std::max(status, r.declared ? 1 : 2);
      worst = std::max(worst, status);
      const char* verdict = status == 0   ? "complete"
                            : status == 1 ? "incomplete (declared)"
                                          : "INCOMPLETE (undeclared gaps)";
      const uint64_t expected = g.hi - g.lo;
      if (f.json) {
        std::string missing;
        for (const Range& r : g.missing) {
          missing += std::string(missing.empty() ? "" : ", ") +
                     "{\"first\": " + std::to_string(r.first) +
                     ", \"last\": " + std::to_string(r.last) +
                     ", \"declared\": " + (r.declared ? "true" : "false") +
                     (r.declared ? ", \"reason\": " + JsonString(r.why) : "") + "}";
        }
        std::string unsequenced;
        for (const auto& u : g.unsequenced) {
          unsequenced += std::string(unsequenced.empty() ? "" : ", ") + JsonString(u);
        }
        json += std::string(json.empty() ? "" : ",\n  ") + "{\"agent\": " + JsonString(agent) +
                ", \"epoch\": " + JsonString(epoch) + ", \"verdict\": " + JsonString(verdict) +
                ", \"first_seq\": " + std::to_string(g.lo) +
                ", \"expected\": " + std::to_string(expected) +
                ", \"received\": " + std::to_string(g.received) + ", \"missing\": [" + missing +
                "], \"lost_before_the_spool\": [" + unsequenced + "]}";
        continue;
      }
      std::printf("stream %s/%s: %s\n", agent.c_str(), epoch.c_str(), verdict);
      if (expected == 0) {
        std::printf("  no records in the window\n");
        continue;
      }
      std::printf("  seqs %llu..%llu: expected %llu, received %llu\n",
                  static_cast<unsigned long long>(g.lo), static_cast<unsigned long long>(g.hi - 1),
                  static_cast<unsigned long long>(expected),
                  static_cast<unsigned long long>(g.received));
      for (const Range& r : g.missing) {
        std::printf("  missing %llu..%llu (%llu): %s\n", static_cast<unsigned long long>(r.first),
                    static_cast<unsigned long long>(r.last),
                    static_cast<unsigned long long>(r.last - r.first + 1),
                    r.declared ? ("declared lost: " + r.why).c_str()
                               : "NOT declared by the agent: investigate");
      }
      for (const auto& u : g.unsequenced) std::printf("  %s\n", u.c_str());
    }
  }
  if (!any) {
    std::fprintf(stderr, "gapless gaps: no stream matched in %s\n", f.data_dir.c_str());
    return 3;
  }
  if (f.json) std::printf("{\"streams\": [\n  %s\n]}\n", json.c_str());
  return worst;
}

int OutputsReport(const OutputsFlags& flags) {
  if (Status s = store::Layout(flags.data_dir).CheckFormat(env::Env::Posix()); !s.ok()) {
    std::fprintf(stderr, "gapless outputs: %s\n", s.message().c_str());
    return 3;
  }
  auto report = output::ReadReport(env::Env::Posix(), flags.data_dir);
  if (!report.ok()) {
    std::fprintf(stderr, "gapless outputs: %s\n", report.status().message().c_str());
    return 3;
  }
  bool behind = false;
  std::string json = "{\"outputs\":[";
  if (report->empty() && !flags.json) {
    std::printf("no output has run on %s\n", flags.data_dir.c_str());
  }
  for (size_t i = 0; i < report->size(); ++i) {
    const output::OutputReport& o = (*report)[i];
    if (!flags.json) {
      std::printf(
          "output %s%s%s%s\n", o.name.c_str(), o.type.empty() ? "" : " (", o.type.c_str(),
          o.type.empty()
              ? ""
              : (o.confirmed ? ")" : ": sent, unconfirmed — syslog has no acknowledgement)"));
    }
    json += std::string(i ? "," : "") + "{\"name\":" + JsonString(o.name) +
            ",\"type\":" + JsonString(o.type) +
            ",\"confirmed\":" + (o.confirmed ? "true" : "false") + ",\"streams\":[";
    for (size_t k = 0; k < o.streams.size(); ++k) {
      const output::ReportRow& r = o.streams[k];
      const uint64_t waiting = r.signed_size > r.delivered ? r.signed_size - r.delivered : 0;
      if (r.selected && (waiting > 0 || r.rejected > 0 || !r.problem.empty())) behind = true;
      if (!flags.json) {
        std::printf(
            "  %s/%s: should have %llu, confirmed %llu, waiting %llu, refused %llu%s%s\n",
            r.agent.c_str(), r.epoch.c_str(), static_cast<unsigned long long>(r.signed_size),
            static_cast<unsigned long long>(r.delivered), static_cast<unsigned long long>(waiting),
            static_cast<unsigned long long>(r.rejected),
            !r.selected    ? " (not selected by this output)"
            : r.has_cursor ? ""
                           : " (nothing confirmed yet)",
            r.problem.empty() ? "" : (" — " + r.problem).c_str());
      }
      json += std::string(k ? "," : "") + "{\"agent\":" + JsonString(r.agent) +
              ",\"epoch\":" + JsonString(r.epoch) + ",\"signed\":" + std::to_string(r.signed_size) +
              ",\"confirmed\":" + std::to_string(r.delivered) +
              ",\"waiting\":" + std::to_string(waiting) +
              ",\"refused\":" + std::to_string(r.rejected) +
              ",\"has_cursor\":" + (r.has_cursor ? "true" : "false") +
              ",\"selected\":" + (r.selected ? "true" : "false") +
              (r.problem.empty() ? "" : ",\"problem\":" + JsonString(r.problem)) + "}";
    }
    json += "]}";
  }
  json += "]}";
  if (flags.json) std::printf("%s\n", json.c_str());
  return behind ? 1 : 0;
}

}  // namespace gapless::cli
