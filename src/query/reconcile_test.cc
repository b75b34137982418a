#include "query/reconcile.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <map>

#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "store/stream_store.h"

namespace gapless::query {
namespace {

constexpr char kData[] = "/collector";
constexpr int64_t kStart = 1'795'000'000LL * 1'000'000'000;  // 2026-11-18T11:06:40Z

class ReconcileTest : public ::testing::Test {
 protected:
  // n RFC 5424 records "Failed password for u<i> from 10.1.2.<i%6>" in one stream.
  void Build(int n) {
    const spool::Epoch epoch{3, 1, 4};
    epoch_ = store::EpochHex(epoch);
    auto s = store::StreamStore::Open(&env_, store::Layout(kData).StreamDir("web-01", epoch_),
                                      epoch, {.segment_bytes = 16 << 10});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int i = 0; i < n; ++i) {
      const int64_t t = kStart + i * 1'000'000'000LL;
      const std::string text = Text(i);
      const std::string raw = "<13>1 " + event::FormatUnixNanos(t) + " web-01 sshd - - - " + text;
      event::Event e;
      e.format = event::Format::kRfc5424;
      e.source = "syslog:tcp:6514";
      e.host = "web-01";
      e.app = "sshd";
      e.severity = 5;
      e.flags = event::kEventTime;
      e.event_unix_ns = t;
      e.observed_unix_ns = t;
      e.raw = raw;
      e.message = std::string_view(raw).substr(raw.size() - text.size());
      std::string payload;
      event::EncodeEvent(e, &payload);
      auto out = (*s)->Append({static_cast<uint64_t>(i), false},
                              {{spool::FrameType::kData, crc32c::Value(payload), payload}},
                              {spool::RecordLeafHash(spool::FrameType::kData, payload)});
      ASSERT_TRUE(out.ok());
      leaves_.push_back(HexEncode(spool::RecordLeafHash(spool::FrameType::kData, payload)));
    }
    ASSERT_TRUE((*s)->Commit().ok());
  }
  static std::string Text(int i) {
    return "Failed password for u" + std::to_string(i) + " from 10.1.2." + std::to_string(i % 6);
  }
  ReconcileReport Run(const std::string& text, int want_status, int64_t window_ns = 0) {
    auto m = Matcher::Make(Filter{});
    EXPECT_TRUE(m.ok());
    auto r = Reconcile(&env_, kData, **m, text, ExportFormat::kAuto, window_ns);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->ExitStatus(), want_status) << r->Text();
    return *r;
  }

  env::FaultInjectionEnv env_;
  std::string epoch_;
  std::vector<std::string> leaves_;
};

// A SIEM's export without provenance: its own timestamp format in a reformatted syslog
// header, trailing spaces; 3 ranges missing, 2 events twice, 5 events the store never had,
// 3 malformed lines. The report names exactly those.
TEST_F(ReconcileTest, AnExportMissingRangesWithDuplicatesAndForeignEventsIsReportedExactly) {
  Build(1000);
  std::string x;
  uint64_t line = 0;
  std::vector<uint64_t> unknown_lines, malformed_lines;
  const auto add = [&](const std::string& l) {
    x += l + "\n";
    ++line;
  };
  for (int i = 0; i < 1000; ++i) {
    if ((i >= 100 && i <= 109) || i == 500 || (i >= 900 && i <= 949)) continue;
    const std::string reformatted = "<13>Nov 18 11:06:40 web-01 sshd: " + Text(i) + "   ";
    add("{\"_time\":\"2026-11-18 11:06:40\",\"host\":\"web-01\",\"_raw\":\"" + reformatted + "\"}");
    if (i == 200 || i == 300) add("{\"_raw\":\"" + reformatted + "\"}");  // twice
    if (i % 150 == 0 && unknown_lines.size() < 5) {
      add("{\"_raw\":\"<13>Nov 18 11:06:41 web-01 sshd: Accepted password for mallory" +
          std::to_string(i) + "\"}");
      unknown_lines.push_back(line);
    }
    if (i == 10 || i == 20 || i == 30) {
      add(i == 10 ? "this is not json" : i == 20 ? "{\"foo\": 1}" : "{\"_raw\": broken");
      malformed_lines.push_back(line);
    }
  }
  ASSERT_EQ(unknown_lines.size(), 5u);
  const ReconcileReport r = Run(x, 2, 60'000'000'000);
  ASSERT_EQ(r.streams.size(), 1u);
  const StreamReconcile& s = r.streams[0];
  EXPECT_EQ(s.in_store, 1000u);
  EXPECT_EQ(s.matched, 1000u - 61);
  EXPECT_EQ(s.missing,
            (std::vector<std::pair<uint64_t, uint64_t>>{{100, 109}, {500, 500}, {900, 949}}));
  EXPECT_EQ(s.duplicates, 2u);
  EXPECT_EQ(r.unknown, 5u);
  std::vector<uint64_t> got_unknown, got_malformed;
  for (const LineNote& n : r.unknown_events) got_unknown.push_back(n.line);
  for (const LineNote& n : r.malformed_lines) got_malformed.push_back(n.line);
  EXPECT_EQ(got_unknown, unknown_lines);
  EXPECT_EQ(got_malformed, malformed_lines);
  EXPECT_EQ(r.malformed, 3u);
  EXPECT_NE(r.Text().find("missing seqs 100..109"), std::string::npos) << r.Text();
  EXPECT_NE(r.Json().find("\"missing_ranges\":[[100,109],[500,500],[900,949]]"), std::string::npos)
      << r.Json();
  // Per minute (records one a second from 11:06:40): the windows that lack records, and
  // how many; the others are whole.
  ASSERT_EQ(s.windows.size(), 18u);
  std::map<int64_t, uint64_t> lacking;
  uint64_t stored = 0;
  for (const WindowReconcile& w : s.windows) {
    EXPECT_EQ(w.in_store, w.matched + w.missing);
    EXPECT_EQ(w.start_ns % 60'000'000'000, 0);
    stored += w.in_store;
    if (w.missing > 0) lacking[(w.start_ns - kStart) / 1'000'000'000] = w.missing;
  }
  EXPECT_EQ(stored, 1000u);
  // Window k starts at kStart - 40 s + 60 k s: 100..109 fall in k=2, 500 in k=9, 900..919 in
  // k=15, 920..949 in k=16.
  EXPECT_EQ(lacking, (std::map<int64_t, uint64_t>{{80, 10}, {500, 1}, {860, 20}, {920, 30}}));
  EXPECT_NE(
      r.Text().find("window 2026-11-18T11:08:00.000Z: 60 stored, 50 in the export, 10 missing"),
      std::string::npos)
      << r.Text();
  EXPECT_NE(r.Text().find("4 of 18 windows of 60 s lack records"), std::string::npos) << r.Text();
}

std::string Gzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// CSV with provenance, gzipped: matched by agent/epoch/seq (and leaf). One record lacks:
// exit 1; a changed leaf is an altered event, a seq the store never had unknown: exit 2.
TEST_F(ReconcileTest, AGzippedCsvWithProvenanceIsMatchedBySeqAndLeaf) {
  Build(300);
  std::string csv = "gapless.agent,gapless.epoch,gapless.seq,gapless.leaf,message\r\n";
  for (int i = 0; i < 300; ++i) {
    if (i == 42) continue;
    csv += "web-01," + epoch_ + "," + std::to_string(i) + "," + leaves_[i] + ",\"" + Text(i) +
           ", with \"\"quotes\"\"\"\r\n";
  }
  ASSERT_TRUE(env_.CreateDir("/exports").ok());
  ASSERT_TRUE(env::WriteFileAtomically(&env_, "/exports/a.csv.gz", Gzip(csv)).ok());
  auto text = ReadExport(&env_, "/exports/a.csv.gz");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, csv);
  ReconcileReport r = Run(*text, 1);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].missing, (std::vector<std::pair<uint64_t, uint64_t>>{{42, 42}}));
  EXPECT_EQ(r.malformed, 0u) << r.Text();
  std::string bad = csv;
  bad += "web-01," + epoch_ + ",42," + std::string(64, '0') + ",altered\r\n";
  bad += "web-01," + epoch_ + ",5000,,never stored\r\n";
  bad += "web-01,\"unclosed\r\n";
  r = Run(bad, 2);
  EXPECT_EQ(r.altered, 1u);
  EXPECT_EQ(r.unknown, 1u);
  EXPECT_EQ(r.malformed, 1u);
  // A damaged gzip is a clear error.
  std::string gz = Gzip(csv);
  gz.resize(gz.size() / 2);
  ASSERT_TRUE(env::WriteFileAtomically(&env_, "/exports/cut.csv.gz", gz).ok());
  auto cut = ReadExport(&env_, "/exports/cut.csv.gz");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("gzip"), std::string::npos) << cut.status().ToString();
}

TEST_F(ReconcileTest, ACompleteExportIsComplete) {
  Build(50);
  std::string x;
  for (int i = 0; i < 50; ++i) {
    x += "{\"gapless\":{\"agent\":\"web-01\",\"epoch\":\"" + epoch_ +
         "\",\"seq\":" + std::to_string(i) + "},\"message\":\"" + Text(i) + "\"}\n";
  }
  const ReconcileReport r = Run(x, 0);
  EXPECT_EQ(r.missing_records(), 0u);
  EXPECT_NE(r.Text().find("complete"), std::string::npos);
}

}  // namespace
}  // namespace gapless::query
