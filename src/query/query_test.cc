#include "query/query.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "query/segment_index.h"
#include "store/stream_store.h"

namespace gapless::query {
namespace {

constexpr char kData[] = "/collector";
constexpr int64_t kDay = 86400LL * 1'000'000'000;
constexpr int64_t kStart = 1'795'000'000LL * 1'000'000'000;  // 2026-11-18

// What the test wrote, kept apart from the store: the brute-force side of the comparison.
struct Written {
  std::string agent, epoch, source, host, app, raw;
  uint64_t seq = 0;
  uint8_t severity = event::kNoValue;
  int64_t time = 0;  // event time when `has_time`, else observed
  bool has_time = true;
  std::vector<std::pair<std::string, std::string>> fields;
};

class QueryTest : public ::testing::Test {
 protected:
  // n records over 3 agents, 6 sources, 30 days; some without severity or event time.
  void Build(int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::vector<std::string> agents = {"web-01", "web-02", "db-01"};
    const std::vector<std::string> sources = {
        "file:/var/log/auth.log", "syslog:tcp:6514", "syslog:udp:514", "journald", "http:8080",
        "file:/var/log/app.log"};
    const std::vector<std::string> apps = {"sshd", "sudo", "nginx", "postgres"};
    std::map<std::string, std::unique_ptr<store::StreamStore>> stores;
    std::map<std::string, uint64_t> next;
    for (size_t a = 0; a < agents.size(); ++a) {
      const spool::Epoch epoch{static_cast<uint8_t>(a + 1), 7, 9};
      const std::string dir = store::Layout(kData).StreamDir(agents[a], store::EpochHex(epoch));
      auto s = store::StreamStore::Open(&env_, dir, epoch, {.segment_bytes = 64 << 10});
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      epochs_[agents[a]] = store::EpochHex(epoch);
      stores[agents[a]] = std::move(*s);
    }
    for (int i = 0; i < n; ++i) {
      Written w;
      w.agent = agents[rng() % agents.size()];
      w.epoch = epochs_[w.agent];
      w.seq = next[w.agent]++;
      w.source = sources[rng() % sources.size()];
      w.host = "h" + std::to_string(rng() % 5);
      w.app = apps[rng() % apps.size()];
      if (rng() % 10 != 0) w.severity = static_cast<uint8_t>(rng() % 8);
      w.has_time = rng() % 20 != 0;
      // Time goes forward over 30 days, a minute of jitter (out of order within it).
      w.time = kStart + static_cast<int64_t>(i) * (30 * kDay / n) +
               static_cast<int64_t>(rng() % 60'000'000'000);
      const int ip = static_cast<int>(rng() % 6);
      if (rng() % 3 == 0) w.fields.push_back({"user", "u" + std::to_string(rng() % 4)});
      w.raw = "<" + std::to_string(w.severity == event::kNoValue ? 13 : w.severity) + ">" +
              (rng() % 4 == 0 ? "Failed password" : "Accepted key") + " for user from 10.1.2." +
              std::to_string(ip) + " port " + std::to_string(rng() % 65536);
      event::Event e;
      e.format = event::Format::kRfc5424;
      e.source = w.source;
      e.host = w.host;
      e.app = w.app;
      e.severity = w.severity;
      e.observed_unix_ns = w.has_time ? w.time + 5 : w.time;
      if (w.has_time) {
        e.flags |= event::kEventTime;
        e.event_unix_ns = w.time;
      }
      for (const auto& [k, v] : w.fields) e.fields.push_back({k, v});
      e.raw = w.raw;
      e.message = e.raw;
      std::string payload;
      event::EncodeEvent(e, &payload);
      const store::Record r{spool::FrameType::kData, crc32c::Value(payload), payload};
      auto out = stores[w.agent]->Append({w.seq, false}, {r},
                                         {spool::RecordLeafHash(spool::FrameType::kData, payload)});
      ASSERT_TRUE(out.ok()) << out.status.ToString();
      if (i % 500 == 0) {
        ASSERT_TRUE(stores[w.agent]->Commit().ok());
      }
      written_.push_back(std::move(w));
    }
    for (auto& [a, s] : stores) ASSERT_TRUE(s->Commit().ok());
  }

  // The brute-force predicate, written apart from the Matcher.
  static bool Expected(const Filter& f, const Written& w, const std::string& grep_literal) {
    auto in = [](const std::vector<std::string>& globs, const std::string& v) {
      if (globs.empty()) return true;
      for (const std::string& g : globs) {
        if (g == v || (g.back() == '*' && v.rfind(g.substr(0, g.size() - 1), 0) == 0)) return true;
      }
      return false;
    };
    if (!in(f.agents, w.agent) || !in(f.sources, w.source)) return false;
    if (w.seq < f.seq_first || w.seq > f.seq_last) return false;
    if (f.from_ns && w.time < *f.from_ns) return false;
    if (f.to_ns && w.time >= *f.to_ns) return false;
    if (!f.host.empty() && f.host != w.host) return false;
    if (!f.app.empty() && f.app != w.app) return false;
    if (f.min_severity && (w.severity == event::kNoValue || w.severity > *f.min_severity)) {
      return false;
    }
    if (f.max_severity && (w.severity == event::kNoValue || w.severity < *f.max_severity)) {
      return false;
    }
    for (const auto& kv : f.fields) {
      if (std::find(w.fields.begin(), w.fields.end(), kv) == w.fields.end()) return false;
    }
    if (!grep_literal.empty() && w.raw.find(grep_literal) == std::string::npos) return false;
    return true;
  }

  // (agent, seq) of every match of m, in order.
  std::vector<std::pair<std::string, uint64_t>> Collect(const Matcher& m, RunStats* stats) {
    std::vector<std::pair<std::string, uint64_t>> got;
    EXPECT_TRUE(query::Run(
                    &env_, kData, m, {},
                    [&](const Match& x) {
                      got.emplace_back(x.stream->agent, x.seq);
                      return true;
                    },
                    stats)
                    .ok());
    return got;
  }

  std::vector<std::pair<std::string, uint64_t>> RunQuery(const Filter& f, RunOptions o = {}) {
    auto m = Matcher::Make(f);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    std::vector<std::pair<std::string, uint64_t>> got;
    RunStats stats;
    Status s = query::Run(
        &env_, kData, **m, o,
        [&](const Match& x) {
          EXPECT_EQ(x.leaf, spool::RecordLeafHash(x.type, x.payload));
          got.emplace_back(x.stream->agent, x.seq);
          return true;
        },
        &stats);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(stats.warnings.empty()) << stats.warnings.front();
    return got;
  }

  env::FaultInjectionEnv env_;
  std::map<std::string, std::string> epochs_;
  std::vector<Written> written_;
};

int Records() {
  const char* v = std::getenv("GAPLESS_QUERY_RECORDS");  // 200,000 in `make test-long`
  return v != nullptr ? std::max(1000, std::atoi(v)) : 20000;
}

// Random combinations of every filter return exactly what a brute-force scan of what was
// written returns, in stream and seq order.
TEST_F(QueryTest, EveryFilterCombinationReturnsExactlyWhatABruteForceScanFinds) {
  Build(Records(), 17);
  std::mt19937_64 rng(99);
  const std::vector<std::pair<std::string, std::string>> greps = {
      {"Failed password", "Failed password"},
      {"10\\.1\\.2\\.3 ", "10.1.2.3 "},
      {"", ""},
      // Not plain strings: regexec, checked against std::regex's POSIX extended grammar.
      {"(Failed|Accepted) [a-z]+ for user from 10\\.1\\.2\\.[45] port [0-9]*7$", ""},
      {"^<[0-9]>Accepted", ""}};
  int selective = 0;  // rounds whose filter kept some records but not all
  for (int round = 0; round < 60; ++round) {
    Filter f;
    if (rng() % 2) f.agents = {rng() % 2 ? "web-*" : "db-01"};
    if (rng() % 3 == 0) f.sources = {rng() % 2 ? "file:*" : "journald", "http:8080"};
    if (rng() % 2) {
      f.from_ns = kStart + static_cast<int64_t>(rng() % (30 * kDay));
      if (rng() % 2) f.to_ns = *f.from_ns + static_cast<int64_t>(rng() % (3 * kDay));
    }
    if (rng() % 4 == 0) f.host = "h" + std::to_string(rng() % 5);
    if (rng() % 4 == 0) f.app = rng() % 2 ? "sshd" : "sudo";
    if (rng() % 4 == 0) f.min_severity = static_cast<uint8_t>(rng() % 8);
    if (rng() % 5 == 0) f.max_severity = static_cast<uint8_t>(rng() % 8);
    if (rng() % 4 == 0) f.fields = {{"user", "u" + std::to_string(rng() % 4)}};
    if (rng() % 6 == 0) {
      f.seq_first = rng() % 3000;
      f.seq_last = f.seq_first + rng() % 3000;
    }
    const auto& [pattern, literal] = greps[rng() % greps.size()];
    f.grep = pattern;
    std::vector<std::pair<std::string, uint64_t>> want;
    const std::optional<std::regex> re =
        literal.empty() && !pattern.empty()
            ? std::optional<std::regex>(std::regex(pattern, std::regex::extended))
            : std::nullopt;
    for (const Written& w : written_) {
      if (Expected(f, w, literal) && (!re || std::regex_search(w.raw, *re))) {
        want.emplace_back(w.agent, w.seq);
      }
    }
    std::sort(want.begin(), want.end());  // agents "db-01" < "web-01" < "web-02": stream order
    const auto got = RunQuery(f);
    ASSERT_EQ(got, want) << "round " << round;
    if (!want.empty() && want.size() < written_.size()) ++selective;
    if (want.size() > 3) {
      RunOptions o;
      o.limit = 3;
      EXPECT_EQ(RunQuery(f, o), std::vector(want.begin(), want.begin() + 3));
      o.reverse = true;
      EXPECT_EQ(RunQuery(f, o), std::vector(want.rbegin(), want.rbegin() + 3)) << round;
    }
  }
  EXPECT_GE(selective, 30) << "the random filters did not test much";
}

// The segment index: the first time-bounded query reads every segment and writes an index
// for each sealed one; the same query again skips the segments that cannot match, with
// the same results; a damaged index is reported, read around and rebuilt; a deleted one
// is rebuilt silently.
TEST_F(QueryTest, TheSegmentIndexSkipsSegmentsAndADamagedOneIsRebuiltWithTheSameResults) {
  Build(Records(), 5);
  Filter f;
  f.from_ns = kStart + 10 * kDay;
  f.to_ns = *f.from_ns + kDay / 4;
  f.sources = {"file:*"};
  std::vector<std::pair<std::string, uint64_t>> want;
  for (const Written& w : written_) {
    if (Expected(f, w, "")) want.emplace_back(w.agent, w.seq);
  }
  std::sort(want.begin(), want.end());
  auto m = Matcher::Make(f);
  ASSERT_TRUE(m.ok());
  auto run = [&](RunStats* stats) { return Collect(**m, stats); };
  RunStats first;
  EXPECT_EQ(run(&first), want);
  EXPECT_GT(first.indexes_written, 10u);
  EXPECT_EQ(first.segments_skipped, 0u);
  RunStats second;
  EXPECT_EQ(run(&second), want);
  EXPECT_EQ(second.indexes_written, 0u) << "the indexes were there";
  EXPECT_GT(second.segments_skipped, 0u);
  EXPECT_LT(second.scanned, first.scanned);
  EXPECT_TRUE(second.warnings.empty());
  // Damage one index file: reported, read around, rebuilt.
  const std::string path = store::Layout(kData).SegmentIndex("web-01", epochs_["web-01"], 0);
  std::string text = env_.Contents(path);
  ASSERT_FALSE(text.empty());
  text[text.size() / 2] ^= 0x20;
  env_.SetDurableContents(path, text);
  RunStats damaged;
  EXPECT_EQ(run(&damaged), want);
  ASSERT_FALSE(damaged.warnings.empty());
  EXPECT_NE(damaged.warnings[0].find("checksum"), std::string::npos) << damaged.warnings[0];
  EXPECT_EQ(damaged.indexes_written, 1u);
  RunStats again;
  EXPECT_EQ(run(&again), want);
  EXPECT_TRUE(again.warnings.empty());
  EXPECT_EQ(again.segments_skipped, second.segments_skipped);
  // Deleted: rebuilt silently, same results.
  ASSERT_TRUE(env_.RemoveFile(path).ok());
  RunStats deleted;
  EXPECT_EQ(run(&deleted), want);
  EXPECT_TRUE(deleted.warnings.empty());
  EXPECT_EQ(deleted.indexes_written, 1u);
}

// The newest segment of each stream, which the collector is still writing, gets an open
// summary of its first bytes: a later query that cannot match them reads only what was
// appended since (late-arriving records in the window are found), and once those bytes
// are no longer the ones summarised (cut and written again) the summary is not trusted.
TEST_F(QueryTest, TheNewestSegmentsOpenSummarySkipsItsBytesUntilTheyChange) {
  Build(Records(), 9);
  Filter f;
  f.from_ns = kStart + 3 * kDay;
  f.to_ns = *f.from_ns + kDay / 2;
  const auto want = [&] {
    std::vector<std::pair<std::string, uint64_t>> w;
    for (const Written& x : written_) {
      if (Expected(f, x, "")) w.emplace_back(x.agent, x.seq);
    }
    std::sort(w.begin(), w.end());
    return w;
  };
  auto m = Matcher::Make(f);
  ASSERT_TRUE(m.ok());
  const auto run = [&](RunStats* stats) { return Collect(**m, stats); };
  const store::Layout layout(kData);
  const auto newest = [&](const std::string& agent) {
    const std::string dir = layout.StreamDir(agent, epochs_[agent]);
    auto segs = store::ListSegments(&env_, dir);
    EXPECT_TRUE(segs.ok() && !segs->empty());
    return segs->rbegin()->first;
  };
  RunStats first, second;
  EXPECT_EQ(run(&first), want());
  EXPECT_EQ(run(&second), want());
  EXPECT_TRUE(second.warnings.empty()) << second.warnings.front();
  // Without the open summaries the newest segments are read whole.
  for (const char* a : {"web-01", "web-02", "db-01"}) {
    ASSERT_TRUE(env_.RemoveFile(layout.SegmentIndex(a, epochs_[a], newest(a))).ok());
  }
  RunStats without;
  EXPECT_EQ(run(&without), want());
  EXPECT_EQ(second.segments_skipped, without.segments_skipped + 3);
  EXPECT_LT(second.scanned, without.scanned);
  RunStats third;  // the open summaries were written again
  EXPECT_EQ(run(&third), want());
  EXPECT_EQ(third.segments_skipped, second.segments_skipped);

  // Late-arriving records in the window, appended to web-01's newest segment: found, and
  // only they are read of that segment.
  const auto append = [&](const std::string& agent, uint8_t epoch_byte, int n,
                          const std::string& text) {
    const std::string dir = layout.StreamDir(agent, epochs_[agent]);
    auto st = store::StreamStore::Open(&env_, dir, spool::Epoch{epoch_byte, 7, 9},
                                       {.segment_bytes = 64 << 10});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    for (int i = 0; i < n; ++i) {
      Written w;
      w.agent = agent;
      w.epoch = epochs_[agent];
      w.seq = (*st)->next_seq();
      w.source = "journald";
      w.time = *f.from_ns + 1000 + i;
      w.raw = text + std::to_string(i);
      event::Event e;
      e.format = event::Format::kRfc5424;
      e.source = w.source;
      e.flags = event::kEventTime;
      e.event_unix_ns = e.observed_unix_ns = w.time;
      e.raw = e.message = w.raw;
      std::string payload;
      event::EncodeEvent(e, &payload);
      ASSERT_TRUE((*st)
                      ->Append({w.seq, false},
                               {{spool::FrameType::kData, crc32c::Value(payload), payload}},
                               {spool::RecordLeafHash(spool::FrameType::kData, payload)})
                      .ok());
      written_.push_back(std::move(w));
    }
    ASSERT_TRUE((*st)->Commit().ok());
  };
  append("web-01", 1, 3, "late ");
  RunStats late;
  EXPECT_EQ(run(&late), want());
  EXPECT_EQ(late.scanned, third.scanned + 3);
  EXPECT_TRUE(late.warnings.empty()) << late.warnings.front();

  // web-02's newest segment cut back before its summary's end and other records written
  // there, more bytes than were cut: the summary no longer describes those bytes, so it is
  // not trusted (a warning) and every one of the new records in the window is found.
  const std::string segment =
      store::StreamFiles(layout.StreamDir("web-02", epochs_["web-02"])).Segment(newest("web-02"));
  const std::string bytes = env_.Contents(segment);
  env_.SetDurableContents(segment, bytes.substr(0, bytes.size() - 3000));
  append("web-02", 2, 40, "rewritten in the window ");
  const uint64_t first_new = written_[written_.size() - 40].seq;
  RunStats stale;
  const std::vector<std::pair<std::string, uint64_t>> got = run(&stale);
  ASSERT_FALSE(stale.warnings.empty());
  EXPECT_NE(stale.warnings[0].find("stale"), std::string::npos) << stale.warnings[0];
  EXPECT_EQ(
      std::count_if(got.begin(), got.end(),
                    [&](const auto& r) { return r.first == "web-02" && r.second >= first_new; }),
      40);
  ASSERT_TRUE(
      env_.RemoveFile(layout.SegmentIndex("web-02", epochs_["web-02"], newest("web-02"))).ok());
  RunStats fresh;
  EXPECT_EQ(got, run(&fresh)) << "a stale open summary must not change the answer";
}

// IndexStore (what the collector runs every index_interval_seconds): every segment gets
// its summary, reading each record once; a second round reads nothing; the first
// time-bounded query then skips at once, with the same answer as a scan.
TEST_F(QueryTest, IndexStoreSummarisesEverySegmentOnceAndTheFirstQuerySkips) {
  Build(Records(), 11);
  auto first = IndexStore(&env_, kData);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->scanned, written_.size());
  EXPECT_EQ(first->matched, 0u);
  uint64_t segments = 0;
  for (const auto& [agent, epoch] : epochs_) {
    auto l = store::ListSegments(&env_, store::Layout(kData).StreamDir(agent, epoch));
    ASSERT_TRUE(l.ok());
    segments += l->size();
  }
  EXPECT_EQ(first->indexes_written, segments);
  auto second = IndexStore(&env_, kData);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->scanned, 0u);
  EXPECT_EQ(second->indexes_written, 0u);
  EXPECT_EQ(second->segments_skipped, segments);
  // As the collector runs it, with its state kept from round to round: a round after the
  // first looks only at each stream's newest segment, and what is appended is summarised.
  IndexerState state;
  auto kept = IndexStore(&env_, kData, &state);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->segments_skipped, segments);  // the first round looks at every one
  auto next = IndexStore(&env_, kData, &state);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->segments_skipped, epochs_.size()) << "only each stream's newest segment";
  EXPECT_EQ(next->scanned, 0u);
  {  // web-01 grows by more than a segment: the next round reads only what was appended
    const std::string dir = store::Layout(kData).StreamDir("web-01", epochs_["web-01"]);
    auto st =
        store::StreamStore::Open(&env_, dir, spool::Epoch{1, 7, 9}, {.segment_bytes = 64 << 10});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    for (int i = 0; i < 1000; ++i) {
      event::Event e;
      e.source = "journald";
      e.flags = event::kEventTime;
      e.event_unix_ns = e.observed_unix_ns = kStart + 40 * kDay + i;
      const std::string raw = "appended " + std::to_string(i) + std::string(100, '.');
      e.raw = e.message = raw;
      std::string payload;
      event::EncodeEvent(e, &payload);
      ASSERT_TRUE((*st)
                      ->Append({(*st)->next_seq(), false},
                               {{spool::FrameType::kData, crc32c::Value(payload), payload}},
                               {spool::RecordLeafHash(spool::FrameType::kData, payload)})
                      .ok());
    }
    ASSERT_TRUE((*st)->Commit().ok());
  }
  auto grown = IndexStore(&env_, kData, &state);
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(grown->scanned, 1000u);
  EXPECT_GE(grown->indexes_written, 2u);  // the sealed ones and the new newest
  auto check = IndexStore(&env_, kData);  // without state: every summary is intact
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->scanned, 0u);
  EXPECT_EQ(check->indexes_written, 0u);
  Filter f;
  f.from_ns = kStart + 20 * kDay;
  f.to_ns = *f.from_ns + kDay / 6;
  std::vector<std::pair<std::string, uint64_t>> want;
  for (const Written& w : written_) {
    if (Expected(f, w, "")) want.emplace_back(w.agent, w.seq);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(RunQuery(f), want);
}

TEST(SegmentIndex, RoundTripsAndRefusesAnythingElse) {
  SegmentSummary s;
  s.segment_bytes = 65536;
  s.first_seq = 100;
  s.end_seq = 250;
  s.min_time = -5;
  s.max_time = 1'795'000'000'000'000'000;
  s.AddSource("journald");
  s.AddSource("file:/var/log/auth.log");
  const std::string text = EncodeSummary(s);
  auto back = DecodeSummary(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sources, s.sources);
  EXPECT_EQ(back->max_time, s.max_time);
  EXPECT_EQ(back->min_time, -5);
  for (size_t cut = 0; cut < text.size(); ++cut) {
    EXPECT_FALSE(DecodeSummary(text.substr(0, cut)).ok()) << cut;
  }
  // An open summary (of the newest segment's first bytes) keeps its tail CRC.
  s.open = true;
  s.tail_crc = 0xdeadbeef;
  auto open = DecodeSummary(EncodeSummary(s));
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_TRUE(open->open);
  EXPECT_EQ(open->tail_crc, 0xdeadbeefu);
  EXPECT_EQ(open->sources, s.sources);
  for (int i = 0; i < 70; ++i) s.AddSource("src-" + std::to_string(i));
  EXPECT_TRUE(s.all_sources);
  EXPECT_TRUE(s.sources.empty());
  EXPECT_TRUE(DecodeSummary(EncodeSummary(s))->all_sources);
}

TEST_F(QueryTest, AFollowingQuerySeesRecordsStoredAfterItStartedAcrossSegmentRolls) {
  const spool::Epoch epoch{5, 5, 5};
  const std::string dir = store::Layout(kData).StreamDir("web-01", store::EpochHex(epoch));
  auto s = store::StreamStore::Open(&env_, dir, epoch, {.segment_bytes = 4096});
  ASSERT_TRUE(s.ok());
  auto m = Matcher::Make(Filter{});
  ASSERT_TRUE(m.ok());
  std::vector<uint64_t> seen;
  std::atomic<bool> stop{false};
  std::atomic<size_t> count{0};
  RunOptions o;
  o.follow = true;
  o.poll_ms = 10;
  o.stop = [&] { return stop.load(); };
  std::thread follower([&] {
    EXPECT_TRUE(query::Run(
                    &env_, kData, **m, o,
                    [&](const Match& x) {
                      seen.push_back(x.seq);
                      ++count;
                      return true;
                    },
                    nullptr)
                    .ok());
  });
  const int n = 600;  // ~100 bytes each: many 4 KiB segments
  for (int i = 0; i < n; ++i) {
    event::Event e;
    e.source = "test";
    const std::string raw = "line " + std::to_string(i) + std::string(60, 'x');
    e.raw = raw;
    std::string payload;
    event::EncodeEvent(e, &payload);
    auto out = (*s)->Append({static_cast<uint64_t>(i), false},
                            {{spool::FrameType::kData, crc32c::Value(payload), payload}},
                            {spool::RecordLeafHash(spool::FrameType::kData, payload)});
    ASSERT_TRUE(out.ok());
    if (i % 7 == 0) {
      ASSERT_TRUE((*s)->Commit().ok());
    }
  }
  ASSERT_TRUE((*s)->Commit().ok());
  for (int i = 0; i < 500 && count < static_cast<size_t>(n); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  follower.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], static_cast<uint64_t>(i));
}

TEST(QueryParse, TimesSeveritiesRangesAndBadInputSayWhatToGive) {
  const int64_t now = kStart;
  EXPECT_EQ(*ParseTime("-2h", now), now - 2 * 3600LL * 1'000'000'000);
  EXPECT_EQ(*ParseTime("+30m", now), now + 30 * 60LL * 1'000'000'000);
  EXPECT_EQ(*ParseTime("now", now), now);
  EXPECT_EQ(*ParseTime("1795000000", now), kStart);
  EXPECT_EQ(*ParseTime("2026-11-18T11:06:40Z", now), kStart);
  EXPECT_EQ(*ParseTime("2026-11-18T12:06:40.000+01:00", now), kStart);
  for (const char* bad : {"", "yesterday", "-2y", "2026-11-18T11:06:40", "-h", "12abc"}) {
    auto t = ParseTime(bad, now);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_NE(t.status().message().find("RFC 3339"), std::string::npos);
    }
  }
  EXPECT_EQ(*ParseSeverity("warning"), 4);
  EXPECT_EQ(*ParseSeverity("3"), 3);
  EXPECT_FALSE(ParseSeverity("loud").ok());
  EXPECT_EQ(*ParseSeqRange("10..20"), std::make_pair(uint64_t{10}, uint64_t{20}));
  EXPECT_EQ(ParseSeqRange("10..")->second, UINT64_MAX);
  EXPECT_EQ(*ParseSeqRange("7"), std::make_pair(uint64_t{7}, uint64_t{7}));
  EXPECT_FALSE(ParseSeqRange("20..10").ok());
  EXPECT_FALSE(ParseSeqRange("a..b").ok());
  // Times past what a 64-bit nanosecond count holds are refused, not overflowed (found by
  // fuzz/query_args_fuzzer.cc; the ASan+UBSan build fails this on the old code).
  for (const char* far : {"-100000000d", "+99999999d", "99999999999", "9999-01-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseTime(far, 1'795'000'000'000'000'000).ok()) << far;
  }
  EXPECT_TRUE(ParseTime("-36500d", 1'795'000'000'000'000'000).ok());
  Filter f;
  f.grep = "(unclosed";
  auto m = Matcher::Make(f);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("not a POSIX extended regular expression"),
            std::string::npos);
  // Patterns whose automata would take gigabytes in glibc's regcomp (found by
  // fuzz/query_args_fuzzer.cc: "a+++...+" ran out of memory) are refused, saying why;
  // ordinary searches are not.
  for (const auto& [pattern, why] : std::vector<std::pair<std::string, std::string>>{
           {"a" + std::string(40, '+'), "a repetition of a repetition"},
           {"(a{255}){255}", "above 100"},
           {"(a*b+c?)(d*e+f?)(g*h+i?)(j*k+l?)(m*n+o?)(p*q+r?)", "more than 16"},
           {"a{2}b{2}c{2}d{2}e{2}", "more than 4 counted"},
           {std::string(1100, 'x'), "longer than 1024"}}) {
    f.grep = pattern;
    auto refused = Matcher::Make(f);
    ASSERT_FALSE(refused.ok()) << pattern;
    EXPECT_NE(refused.status().message().find(why), std::string::npos)
        << refused.status().message();
  }
  for (const char* fine : {"10\\.1\\.2\\.3", "(Failed|Accepted) [a-z]+ for .* from [0-9.]+$",
                           "[*+?{]+", "x{1,100}", "a\\+\\+\\+"}) {
    f.grep = fine;
    EXPECT_TRUE(Matcher::Make(f).ok()) << fine;
  }
}

TEST_F(QueryTest, AMissingStoreIsAClearError) {
  auto m = Matcher::Make(Filter{});
  ASSERT_TRUE(m.ok());
  const Status s = query::Run(
      &env_, "/nowhere", **m, {}, [](const Match&) { return true; }, nullptr);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace gapless::query
