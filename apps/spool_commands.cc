#include "spool_commands.h"

#include <cstdio>
#include <iostream>
#include <string>

#include "env/env.h"
#include "event/event.h"
#include "spool/spool.h"

namespace gapless::cli {
namespace {

void PrintReport(const spool::RecoveryReport& r) {
  std::printf("recovered: %llu records, next seq %llu, torn tail %llu bytes cut\n",
              static_cast<unsigned long long>(r.records),
              static_cast<unsigned long long>(r.next_seq),
              static_cast<unsigned long long>(r.torn_bytes_truncated));
  for (const spool::Damage& d : r.damage) {
    std::printf("DAMAGE %s offset %llu, %llu bytes (%s)", d.segment.c_str(),
                static_cast<unsigned long long>(d.offset), static_cast<unsigned long long>(d.bytes),
                d.reason.c_str());
    if (d.has_seqs) {
      std::printf(", seqs %llu..%llu lost", static_cast<unsigned long long>(d.first_seq),
                  static_cast<unsigned long long>(d.last_seq));
    }
    std::printf(" — written to the stream as a LOSS record\n");
  }
  if (r.already_recorded > 0) {
    std::printf("%llu damaged region(s) already named by earlier LOSS records\n",
                static_cast<unsigned long long>(r.already_recorded));
  }
  if (!r.merkle_known) std::printf("WARNING: Merkle state lost to corruption\n");
  if (r.cursors_reset) std::printf("WARNING: CURSORS damaged; consumers restart at oldest\n");
}

void PrintCheckpoint(spool::Spool* s) {
  auto cp = s->DurableCheckpoint();
  if (!cp.ok()) {
    std::printf("checkpoint: %s\n", cp.status().ToString().c_str());
    return;
  }
  std::printf("checkpoint: epoch %s size %llu root %s\n",
              HexEncode(s->epoch().data(), s->epoch().size()).c_str(),
              static_cast<unsigned long long>(cp->size), HexEncode(cp->root).c_str());
}

StatusOr<std::unique_ptr<spool::Spool>> OpenVerbose(const std::string& dir, bool quiet) {
  spool::RecoveryReport report;
  auto s = spool::Spool::Open(env::Env::Posix(), dir, spool::Options{}, &report);
  if (s.ok() && (!quiet || !report.damage.empty())) PrintReport(report);
  return s;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "gapless: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int SpoolAppend(const std::string& dir, bool quiet) {
  auto opened = OpenVerbose(dir, quiet);
  if (!opened.ok()) return Fail(opened.status());
  spool::Spool* s = opened->get();
  std::string line;
  uint64_t n = 0;
  while (std::getline(std::cin, line)) {
    event::Event e;
    e.format = event::Format::kLine;
    e.source = "cli:spool-append";
    e.observed_unix_ns = env::Env::Posix()->clock()->NowNanos();
    e.raw = line;
    e.message = line;
    std::string payload;
    event::EncodeEvent(e, &payload);
    auto r = s->Append(payload);
    if (!r.ok()) return Fail(r.status());
    ++n;
  }
  if (Status st = s->Close(); !st.ok()) return Fail(st);
  if (!quiet) {
    std::printf("appended %llu records; ", static_cast<unsigned long long>(n));
    auto reopened = spool::Spool::Open(env::Env::Posix(), dir, spool::Options{});
    if (reopened.ok()) PrintCheckpoint(reopened->get());
  }
  return 0;
}

int SpoolInspect(const std::string& dir, bool show_records) {
  if (!env::Env::Posix()->FileExists(dir)) {
    return Fail(NotFoundError("no spool directory " + dir));
  }
  auto opened = OpenVerbose(dir, false);
  if (!opened.ok()) return Fail(opened.status());
  spool::Spool* s = opened->get();
  const spool::Stats st = s->stats();
  std::printf(
      "segments %llu, bytes %llu of quota %llu, seqs %llu..%llu\n",
      static_cast<unsigned long long>(st.segments), static_cast<unsigned long long>(st.bytes_used),
      static_cast<unsigned long long>(st.quota_bytes),
      static_cast<unsigned long long>(st.oldest_seq), static_cast<unsigned long long>(st.next_seq));
  PrintCheckpoint(s);
  if (!show_records) return 0;
  auto reader = s->NewReader(s->oldest_seq());
  if (!reader.ok()) return Fail(reader.status());
  spool::Record rec;
  for (;;) {
    auto more = (*reader)->Next(&rec);
    if (!more.ok()) return Fail(more.status());
    if (!*more) break;
    if (rec.type == spool::FrameType::kLoss) {
      auto loss = spool::LossRecord::Decode(rec.payload);
      std::printf("%llu %s\n", static_cast<unsigned long long>(rec.seq),
                  loss.ok() ? loss->ToString().c_str() : "LOSS (undecodable)");
    } else {
      event::Event e;
      const Status decoded = event::DecodeEvent(rec.payload, &e);
      std::printf(
          "%llu %s\n", static_cast<unsigned long long>(rec.seq),
          decoded.ok() ? event::DescribeEvent(e).c_str() : ("(" + decoded.message() + ")").c_str());
    }
  }
  return 0;
}

}  // namespace gapless::cli
