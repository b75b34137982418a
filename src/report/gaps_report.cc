#include "report/gaps_report.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fstream>

#include "base/json_text.h"
#include "env/env.h"
#include "event/event.h"
#include "spool/loss_record.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::report {
namespace {

StreamGaps Analyze(const std::string& dir, int64_t from_ns, int64_t to_ns) {
  struct Loss {
    uint64_t first, last;
    std::string reason;
  };
  std::vector<std::pair<uint64_t, uint64_t>> present;  // ranges of stored seqs
  std::vector<Loss> losses;
  StreamGaps g;
  bool seen_in_window = false;
  uint64_t next = 0;
  g.error = store::ForEachStoredRecord(
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
  if (!g.error.ok()) return g;
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
      MissingRange r{q, end, cover != nullptr, cover ? cover->reason : ""};
      if (!g.missing.empty() && g.missing.back().last + 1 == q &&
          g.missing.back().declared == r.declared && g.missing.back().reason == r.reason) {
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

int StreamGaps::status() const {
  int s = missing.empty() && unsequenced.empty() ? 0 : 1;
  for (const MissingRange& r : missing) s = std::max(s, r.declared ? 1 : 2);
  return s;
}

const char* StreamGaps::verdict() const {
  switch (status()) {
    case 0:
      return "complete";
    case 1:
      return "incomplete (declared)";
    default:
      return "INCOMPLETE (undeclared gaps)";
  }
}

std::optional<int64_t> ParseGapsTime(const std::string& text) {
  int64_t secs = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
  if (ec == std::errc() && end == text.data() + text.size()) {
    if (secs > INT64_MAX / 1'000'000'000 || secs < INT64_MIN / 1'000'000'000) return std::nullopt;
    return secs * 1'000'000'000;
  }
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  while (*rest == '.' || (*rest >= '0' && *rest <= '9')) ++rest;
  if (std::string(rest) != "Z") return std::nullopt;  // UTC only: no guessing of offsets
  const int64_t secs_tm = static_cast<int64_t>(timegm(&tm));
  if (secs_tm > INT64_MAX / 1'000'000'000 || secs_tm < INT64_MIN / 1'000'000'000) {
    return std::nullopt;
  }
  return secs_tm * 1'000'000'000;
}

StatusOr<std::vector<StreamGaps>> ReadGaps(const std::string& data_dir, const std::string& agent,
                                           int64_t from_ns, int64_t to_ns) {
  const store::Layout layout(data_dir);
  auto streams = layout.ListStreams(env::Env::Posix());
  RETURN_IF_ERROR(streams.ok() ? layout.CheckFormat(env::Env::Posix()) : streams.status());
  std::vector<StreamGaps> out;
  for (const store::StreamRef& stream : *streams) {
    if (!agent.empty() && stream.agent != agent) continue;
    StreamGaps g = Analyze(stream.dir, from_ns, to_ns);
    g.agent = stream.agent;
    g.epoch = stream.epoch;
    out.push_back(std::move(g));
  }
  return out;
}

std::string GapsJson(const std::vector<StreamGaps>& streams) {
  std::string json;
  for (const StreamGaps& g : streams) {
    if (!g.error.ok()) continue;
    std::string missing;
    for (const MissingRange& r : g.missing) {
      missing += std::string(missing.empty() ? "" : ", ") +
                 "{\"first\": " + std::to_string(r.first) +
                 ", \"last\": " + std::to_string(r.last) +
                 ", \"declared\": " + (r.declared ? "true" : "false") +
                 (r.declared ? ", \"reason\": " + JsonString(r.reason) : "") + "}";
    }
    std::string unsequenced;
    for (const auto& u : g.unsequenced) {
      unsequenced += std::string(unsequenced.empty() ? "" : ", ") + JsonString(u);
    }
    json += std::string(json.empty() ? "" : ",\n  ") + "{\"agent\": " + JsonString(g.agent) +
            ", \"epoch\": " + JsonString(g.epoch) + ", \"verdict\": " + JsonString(g.verdict()) +
            ", \"first_seq\": " + std::to_string(g.lo) +
            ", \"expected\": " + std::to_string(g.hi - g.lo) +
            ", \"received\": " + std::to_string(g.received) + ", \"missing\": [" + missing +
            "], \"lost_before_the_spool\": [" + unsequenced + "]}";
  }
  return "{\"streams\": [\n  " + json + "\n]}\n";
}

}  // namespace gapless::report
