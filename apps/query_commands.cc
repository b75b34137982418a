#include "query_commands.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <tuple>

#include "base/json_text.h"
#include "event/event.h"
#include "output/output.h"
#include "output/shape.h"
#include "proof/prover.h"
#include "query/query.h"
#include "query/reconcile.h"
#include "verify_commands.h"

namespace gapless::cli {
namespace {

std::atomic<bool> interrupted{false};
void OnSignal(int) { interrupted = true; }

int Fail(const std::string& why) {
  std::fprintf(stderr, "gapless query: %s\n", why.c_str());
  return 2;
}

// One line of text: time, stream and seq, source, host, app, severity, the message.
std::string TextLine(const query::Match& m) {
  std::string line;
  if (m.event == nullptr) {
    return "(not an event) " + m.stream->agent + "/" + m.stream->epoch + "#" +
           std::to_string(m.seq) + " " + std::to_string(m.payload.size()) + " bytes\n";
  }
  const event::Event& e = *m.event;
  line = event::FormatUnixNanos(query::Matcher::TimeOf(e)) + " " + m.stream->agent + "/" +
         m.stream->epoch.substr(0, 8) + "#" + std::to_string(m.seq) + " " + std::string(e.source);
  if (!e.host.empty()) line += " " + std::string(e.host);
  if (!e.app.empty()) line += " " + std::string(e.app);
  if (e.severity != event::kNoValue) line += " <" + std::to_string(e.severity) + ">";
  line += ": ";
  for (char c : e.message.empty() ? e.raw : e.message) {
    line += (c == '\n' || c == '\r') ? ' ' : c;  // one record, one line
  }
  return line + "\n";
}

// --from / --to into the filter's window; the error names the flag.
Status ParseWindow(const std::string& from, const std::string& to, query::Filter* filter) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& [flag, text, out] :
       {std::tuple{"--from", &from, &filter->from_ns}, std::tuple{"--to", &to, &filter->to_ns}}) {
    if (text->empty()) continue;
    auto t = query::ParseTime(*text, now);
    if (!t.ok()) return InvalidArgumentError(std::string(flag) + ": " + t.status().message());
    *out = *t;
  }
  return Status::Ok();
}

// What the archive's verification found, on stderr; 3 when it failed (tampered).
int ReportArchiveCheck(const std::string& path, const archive::ArchiveReport& r, bool keyed) {
  std::fflush(stdout);  // the results first, then what the check says of them
  if (r.stopped) {
    std::fprintf(stderr,
                 "gapless query: %s: the reading stopped at --limit, so the archive was not "
                 "verified to its end (gapless verify %s checks all of it)\n",
                 path.c_str(), path.c_str());
    return 0;
  }
  std::vector<std::string> problems = r.problems;
  for (const archive::StreamInArchive& st : r.streams) {
    for (const std::string& p : st.report.problems) {
      problems.push_back(st.agent + "/" + st.epoch + ": " + p);
    }
  }
  if (!keyed) {
    // Without a key every stream and the seal carry a "not checked" problem; the others
    // (damage, a broken tree, a missing seal) still count.
    std::erase_if(problems,
                  [](const std::string& p) { return p.find("not checked") != std::string::npos; });
    std::fprintf(stderr,
                 "gapless query: %s: signatures NOT checked (no --key); its structure and "
                 "trees were\n",
                 path.c_str());
  }
  if (problems.empty()) {
    if (keyed) {
      std::fprintf(stderr, "gapless query: %s: verified (%s), seal checked\n", path.c_str(),
                   std::string(verify::VerdictName(r.verdict)).c_str());
    }
    return 0;
  }
  std::fprintf(stderr,
               "gapless query: %s FAILED verification; what was printed cannot be trusted:\n",
               path.c_str());
  for (const std::string& p : problems) std::fprintf(stderr, "  PROBLEM: %s\n", p.c_str());
  return 3;
}

}  // namespace

int Query(const QueryFlags& f) {
  query::Filter filter;
  if (Status w = ParseWindow(f.from, f.to, &filter); !w.ok()) return Fail(w.message());
  filter.agents = f.agents;
  filter.sources = f.sources;
  filter.epoch = f.epoch;
  filter.host = f.host;
  filter.app = f.app;
  if (!f.severity.empty()) {
    auto s = query::ParseSeverity(f.severity);
    if (!s.ok()) return Fail("--severity: " + s.status().message());
    filter.min_severity = *s;
  }
  if (!f.max_severity.empty()) {
    auto s = query::ParseSeverity(f.max_severity);
    if (!s.ok()) return Fail("--max-severity: " + s.status().message());
    filter.max_severity = *s;
  }
  for (const std::string& kv : f.fields) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("--field \"" + kv + "\": give key=value");
    filter.fields.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!f.seq.empty()) {
    auto r = query::ParseSeqRange(f.seq);
    if (!r.ok()) return Fail("--seq: " + r.status().message());
    filter.seq_first = r->first;
    filter.seq_last = r->second;
  }
  filter.grep = f.grep;
  std::optional<output::Shape> shape;
  if (f.archive.empty() == f.data_dir.empty()) {
    return Fail("give either --data-dir (a collector's store) or an archive file");
  }
  if (!f.archive.empty() && (f.with_proof || f.follow)) {
    return Fail(std::string(f.with_proof ? "--with-proof" : "--follow") +
                " reads a collector's data_dir; an archive carries its own evidence: check it "
                "with gapless verify " +
                f.archive + " --key <the collector's verifier key>");
  }
  if (f.data_dir.empty() == false && (!f.identity.empty() || !f.key.empty())) {
    return Fail("--identity and --key are for an archive file");
  }
  if (f.with_proof && f.format != "ndjson") {
    return Fail("--with-proof needs --format ndjson (the proof is a member of each result)");
  }
  if (f.format == "ndjson") {
    shape = output::Shape::kJson;
  } else if (f.format == "raw" || f.format == "ecs" || f.format == "ocsf") {
    auto s = output::ParseShape(f.format);
    if (!s.ok()) return Fail(s.status().message());
    shape = *s;
  } else if (f.format != "text") {
    return Fail("--format \"" + f.format + "\": give text, ndjson, raw, ecs or ocsf");
  }
  auto matcher = query::Matcher::Make(std::move(filter));
  if (!matcher.ok()) return Fail(matcher.status().message());
  query::RunOptions o;
  o.limit = f.limit;
  o.reverse = f.reverse;
  o.follow = f.follow;
  if (f.follow) {
    ::signal(SIGINT, OnSignal);
    ::signal(SIGTERM, OnSignal);
    o.stop = [] { return interrupted.load(); };
  }
  uint64_t printed = 0;
  std::unique_ptr<proof::Prover> prover;
  if (f.with_proof) prover = std::make_unique<proof::Prover>(env::Env::Posix(), f.data_dir);
  query::RunStats stats;
  const auto print = [&](const query::Match& m) {
    ++printed;
    if (f.count) return true;
    std::string out;
    if (!shape) {
      out = TextLine(m);
    } else {
      const output::Provenance p{m.stream->agent, m.stream->epoch, m.seq, m.leaf};
      out = output::FormatRecord(*shape, p, m.type, m.payload).body;
      while (!out.empty() && out.back() == '\n') out.pop_back();
      if (prover) query::AddReceipt(prover.get(), m, &out);
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (f.follow) std::fflush(stdout);
    return true;
  };
  int archive_status = 0;
  Status s;
  if (f.archive.empty()) {
    s = query::Run(env::Env::Posix(), f.data_dir, **matcher, o, print, &stats);
  } else {
    std::optional<archive::Identity> identity;
    if (!f.identity.empty()) {
      auto id = archive::Identity::Load(f.identity);
      if (!id.ok()) return Fail("--identity: " + id.status().message());
      identity = *id;
    }
    std::optional<checkpoint::Verifier> key;
    if (!ResolveKey(f.key, "", &key)) return 2;
    archive::ArchiveReport verified;
    s = query::RunArchive(f.archive, identity ? &*identity : nullptr, key, **matcher, o, print,
                          &stats, &verified);
    if (s.ok()) archive_status = ReportArchiveCheck(f.archive, verified, key.has_value());
  }
  for (const std::string& w : stats.warnings)
    std::fprintf(stderr, "gapless query: warning: %s\n", w.c_str());
  if (!s.ok()) return Fail(s.message());
  if (f.count) std::printf("%llu\n", static_cast<unsigned long long>(printed));
  if (archive_status != 0) return archive_status;
  return printed > 0 ? 0 : 1;
}

int ReconcileCommand(const ReconcileFlags& f) {
  const auto fail = [](const std::string& why) {
    std::fprintf(stderr, "gapless reconcile: %s\n", why.c_str());
    return 3;
  };
  query::Filter scope;
  scope.agents = f.agents;
  if (Status w = ParseWindow(f.from, f.to, &scope); !w.ok()) return fail(w.message());
  query::ExportFormat format = query::ExportFormat::kAuto;
  if (f.format == "ndjson") {
    format = query::ExportFormat::kNdjson;
  } else if (f.format == "csv") {
    format = query::ExportFormat::kCsv;
  } else if (f.format != "auto") {
    return fail("--format \"" + f.format + "\": give auto, ndjson or csv");
  }
  auto window = query::ParseDuration(f.window);
  if (!window.ok()) return fail("--window: " + window.status().message());
  auto text = query::ReadExport(env::Env::Posix(), f.against);
  if (!text.ok()) return fail("--against: " + text.status().message());
  auto matcher = query::Matcher::Make(std::move(scope));
  if (!matcher.ok()) return fail(matcher.status().message());
  auto report = query::Reconcile(env::Env::Posix(), f.data_dir, **matcher, *text, format, *window);
  if (!report.ok()) return fail(report.status().message());
  const std::string out = f.json ? report->Json() : report->Text();
  std::fwrite(out.data(), 1, out.size(), stdout);
  return report->ExitStatus();
}

}  // namespace gapless::cli
