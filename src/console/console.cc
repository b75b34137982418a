#include "console/console.h"

#include <openssl/crypto.h>

#include <fnmatch.h>
#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "alert/alert.h"
#include "base/address.h"
#include "base/json_text.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "console/assets.h"
#include "env/env.h"
#include "identity/identity.h"
#include "output/output.h"
#include "output/shape.h"
#include "proof/prover.h"
#include "query/query.h"
#include "query/segment_index.h"
#include "report/gaps_report.h"
#include "report/outputs_report.h"
#include "report/status_report.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::console {
namespace {

using http::ServerResponse;
constexpr size_t kMaxParams = 16;
constexpr size_t kMaxValue = 1024;
constexpr uint64_t kMaxPage = 1000;
constexpr uint64_t kMaxJournalBytes = 16 << 20;  // the alerts page reads the newest 16 MiB

ServerResponse Json(int status, std::string body) {
  ServerResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

ServerResponse Error(int status, const std::string& message) {
  return Json(status, "{\"error\": " + JsonString(message) + "}\n");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status Decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      *out += ' ';
    } else if (in[i] == '%') {
      const int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(in[i + 2]) : -1;
      if (lo < 0) return InvalidArgumentError("a '%' must be followed by two hex digits");
      *out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      *out += in[i];
    }
    if (out->size() > kMaxValue) {
      return InvalidArgumentError("a parameter is longer than 1024 bytes");
    }
  }
  return Status::Ok();
}

// Only the parameters a route knows; a misspelt one is an error, not ignored.
Status Only(const std::map<std::string, std::string>& p, std::initializer_list<const char*> known) {
  for (const auto& [k, v] : p) {
    bool ok = false;
    for (const char* name : known) ok = ok || k == name;
    if (!ok) {
      std::string list;
      for (const char* name : known) list += std::string(list.empty() ? "" : ", ") + name;
      return InvalidArgumentError("unknown parameter \"" + k + "\"" +
                                  (list.empty() ? " (this path takes none)" : "; give " + list));
    }
  }
  return Status::Ok();
}

StatusOr<uint64_t> Number(const std::map<std::string, std::string>& p, const std::string& name,
                          uint64_t fallback, uint64_t max) {
  auto it = p.find(name);
  if (it == p.end()) return fallback;
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) {
    return InvalidArgumentError(name + "=\"" + s + "\": give a whole number from 0 to " +
                                std::to_string(max));
  }
  return v;
}

std::string Get(const std::map<std::string, std::string>& p, const std::string& name) {
  auto it = p.find(name);
  return it == p.end() ? "" : it->second;
}

// The judgment of a stream, with the reason in words (the page shows both).
struct Judged {
  const char* state;  // "red" | "amber" | "green"
  std::string reason;
};

// The names of the alerts firing per stream, critical and warning: one pass over the
// alerts for all streams (5,000 streams with as many alerts stay one pass, not 25 M).
struct Firing {
  std::string critical, warning;
};
std::map<std::string, Firing> FiringByStream(const std::vector<ledger::AlertRow>& alerts) {
  std::map<std::string, Firing> out;
  for (const auto& a : alerts) {
    const std::string key = report::StreamOfSubject(a.subject);
    if (key.empty()) continue;
    std::string& into = a.severity == "critical" ? out[key].critical : out[key].warning;
    into += std::string(into.empty() ? "" : ", ") + a.name;
  }
  return out;
}

Judged Judge(const report::StreamStatus& s, const std::map<std::string, Firing>& firing,
             int64_t now_ns, int64_t silent_s) {
  static const Firing kNone;
  const auto it = firing.find(s.agent + "/" + s.epoch);
  const std::string& critical = it == firing.end() ? kNone.critical : it->second.critical;
  const std::string& warning = it == firing.end() ? kNone.warning : it->second.warning;
  if (!critical.empty()) return {"red", "firing: " + critical};
  if (s.open_gaps > 0) return {"red", std::to_string(s.open_gaps) + " open gap(s)"};
  if (s.last_heartbeat_ns != 0 && now_ns - s.last_heartbeat_ns > silent_s * report::kSecond) {
    return {"amber", "no heartbeat for " +
                         std::to_string((now_ns - s.last_heartbeat_ns) / report::kSecond) + " s"};
  }
  if (!warning.empty()) return {"amber", "firing: " + warning};
  if (s.declared_losses > 0) {
    return {"amber", std::to_string(s.declared_losses) + " record(s) declared lost"};
  }
  if (s.lag > 0) return {"amber", std::to_string(s.lag) + " record(s) not stored yet"};
  return {"green", "complete: every record the agent holds is stored"};
}

std::string StreamObject(const report::StreamStatus& s, const Judged& j) {
  return "{\"agent\": " + JsonString(s.agent) + ", \"epoch\": " + JsonString(s.epoch) +
         ", \"state\": " + JsonString(j.state) + ", \"reason\": " + JsonString(j.reason) +
         ", \"last_heartbeat_ns\": " + std::to_string(s.last_heartbeat_ns) +
         ", \"head\": " + std::to_string(s.head) + ", \"stored\": " + std::to_string(s.stored) +
         ", \"lag\": " + std::to_string(s.lag) + ", \"open_gaps\": " + std::to_string(s.open_gaps) +
         ", \"declared_losses\": " + std::to_string(s.declared_losses) +
         ", \"alerts\": " + std::to_string(s.alerts) + "}";
}

StatusOr<store::StreamRef> FindStream(const std::string& data_dir, const std::string& agent,
                                      const std::string& epoch) {
  if (agent.empty()) return InvalidArgumentError("agent: required");
  ASSIGN_OR_RETURN(auto streams, store::Layout(data_dir).ListStreams(env::Env::Posix()));
  for (const store::StreamRef& s : streams) {
    if (s.agent == agent && (epoch.empty() || s.epoch == epoch)) return s;
  }
  return NotFoundError("no stream " + agent + (epoch.empty() ? "" : "/" + epoch) + " in the store");
}

// The alert journal's episodes: each (name, subject, started) with its newest event.
struct Episode {
  alert::AlertEvent last;
  int64_t resolved_ns = 0;  // 0: firing
};

std::vector<Episode> ReadEpisodes(const std::string& journal, std::string* warning) {
  std::vector<Episode> out;
  env::Env* env = env::Env::Posix();
  auto size = env->GetFileSize(journal);
  if (!size.ok()) return out;  // no alert yet
  auto file = env->NewRandomAccessFile(journal);
  if (!file.ok()) {
    *warning = file.status().message();
    return out;
  }
  const uint64_t start = *size > kMaxJournalBytes ? *size - kMaxJournalBytes : 0;
  std::string text(*size - start, '\0');
  auto n = (*file)->Read(start, text.size(), text.data());
  if (!n.ok()) {
    *warning = n.status().message();
    return out;
  }
  text.resize(*n);
  if (start > 0) *warning = "only the newest 16 MiB of the journal are shown";
  std::map<std::tuple<std::string, std::string, int64_t>, size_t> index;
  size_t pos = start > 0 ? text.find('\n') + 1 : 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // a line being written
    auto e = alert::ParseEvent(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    if (!e.ok()) continue;
    const auto key = std::make_tuple(e->name, e->subject, e->started_ns);
    auto [it, fresh] = index.emplace(key, out.size());
    if (fresh) out.push_back({});
    Episode& ep = out[it->second];
    ep.resolved_ns = e->firing ? 0 : e->at_ns;
    ep.last = std::move(*e);
  }
  return out;
}

}  // namespace

Status ParseTarget(std::string_view target, std::string* path,
                   std::map<std::string, std::string>* params) {
  params->clear();
  const size_t q = target.find('?');
  RETURN_IF_ERROR(Decode(target.substr(0, q), path));
  if (q == std::string_view::npos) return Status::Ok();
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key, value;
    RETURN_IF_ERROR(Decode(pair.substr(0, eq), &key));
    if (eq != std::string_view::npos) RETURN_IF_ERROR(Decode(pair.substr(eq + 1), &value));
    if (params->size() >= kMaxParams) return InvalidArgumentError("more than 16 parameters");
    if (!params->emplace(key, std::move(value)).second) {
      return InvalidArgumentError("parameter \"" + key + "\" given twice");
    }
  }
  return Status::Ok();
}

bool IsLoopbackListen(const std::string& listen) {
  std::string host;
  uint16_t port = 0;
  if (!ParseListenAddress(listen, &host, &port).ok()) return false;
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

Console::Console(ConsoleOptions o) : o_(std::move(o)) {}
Console::~Console() = default;

http::ServerResponse Console::Handle(const http::ServerRequest& r) {
  if (r.method != "GET" && r.method != "HEAD") {
    ServerResponse out = Error(405, "the console is read-only: GET only");
    out.allow = "GET, HEAD";
    return out;
  }
  std::string path;
  Params params;
  if (Status s = ParseTarget(r.target, &path, &params); !s.ok()) return Error(400, s.message());
  if (path.rfind("/api/", 0) != 0) {
    const Asset* a = FindAsset(path == "/" ? "/index.html" : path);
    if (a == nullptr) return Error(404, "no page " + path + "; the console starts at /");
    ServerResponse out;
    out.content_type = a->content_type;
    out.body.assign(a->data, a->size);
    out.headers.push_back({"Cache-Control", "no-cache"});
    out.headers.push_back({"X-Content-Type-Options", "nosniff"});
    out.headers.push_back({"Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"});
    return out;
  }
  // Authentication before anything is read: no data in a refusal's body.
  bool allowed = o_.open && o_.token.empty();
  if (!allowed && o_.accept_client_cert && r.client_verified) allowed = true;
  if (!allowed && !o_.token.empty()) {
    const std::string want = "Bearer " + o_.token;
    allowed = r.authorization.size() == want.size() &&
              CRYPTO_memcmp(r.authorization.data(), want.data(), want.size()) == 0;
  }
  if (!allowed) {
    ServerResponse out =
        Error(401, o_.token.empty() ? "a client certificate is required"
                                    : "give the console's token: Authorization: Bearer <token>");
    out.headers.push_back({"WWW-Authenticate", "Bearer realm=\"gapless console\""});
    return out;
  }
  return Api(path, params);
}

StatusOr<const ledger::Ledger*> Console::OpenLedger() {
  if (!ledger_) {
    ASSIGN_OR_RETURN(ledger_,
                     ledger::Ledger::Open(store::Layout(o_.data_dir).Ledger(), /*read_only=*/true));
  }
  return ledger_.get();
}

http::ServerResponse Console::Api(const std::string& path, const Params& p) {
  if (path == "/api/status") {
    if (Status s = Only(p, {}); !s.ok()) return Error(400, s.message());
    auto ledger = OpenLedger();
    if (!ledger.ok()) return Error(503, ledger.status().message());
    auto r = report::ReadStatus(**ledger, o_.data_dir, report::WallNowNanos());
    if (!r.ok()) return Error(503, r.status().message());
    return Json(200, report::StatusJson(*r));
  }
  if (path == "/api/gaps") {
    if (Status s = Only(p, {"agent", "from", "to"}); !s.ok()) return Error(400, s.message());
    int64_t from = INT64_MIN, to = INT64_MAX;
    for (auto [name, out] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
      const std::string v = Get(p, name);
      if (v.empty()) continue;
      auto t = report::ParseGapsTime(v);
      if (!t) return Error(400, std::string(name) + ": give RFC 3339 UTC or unix seconds");
      *out = *t;
    }
    auto g = report::ReadGaps(o_.data_dir, Get(p, "agent"), from, to);
    if (!g.ok()) return Error(503, g.status().message());
    return Json(200, report::GapsJson(*g));
  }
  if (path == "/api/outputs") {
    if (Status s = Only(p, {}); !s.ok()) return Error(400, s.message());
    auto r = output::ReadReport(env::Env::Posix(), o_.data_dir);
    if (!r.ok()) return Error(503, r.status().message());
    bool behind = false;
    return Json(200, report::OutputsJson(*r, &behind));
  }
  if (path == "/api/overview") return Overview(p);
  if (path == "/api/stream") return Stream(p);
  if (path == "/api/sources") return Sources(p);
  if (path == "/api/alerts") return Alerts(p);
  if (path == "/api/search") return Search(p);
  if (path == "/api/proof/inclusion") return Proof("inclusion", p);
  if (path == "/api/proof/consistency") return Proof("consistency", p);
  return Error(404,
               "no API " + path +
                   "; there are /api/status, /api/overview, /api/gaps, /api/stream, /api/sources, "
                   "/api/alerts, /api/outputs, /api/search, /api/proof/inclusion, "
                   "/api/proof/consistency");
}

// Streams judged, filtered and paged on the server: 5,000 agents cost one page.
http::ServerResponse Console::Overview(const Params& p) {
  if (Status s = Only(p, {"filter", "state", "offset", "limit"}); !s.ok()) {
    return Error(400, s.message());
  }
  auto offset = Number(p, "offset", 0, UINT32_MAX);
  auto limit = Number(p, "limit", 100, kMaxPage);
  if (!offset.ok()) return Error(400, offset.status().message());
  if (!limit.ok()) return Error(400, limit.status().message());
  const std::string state = Get(p, "state"), filter = Get(p, "filter");
  if (!state.empty() && state != "red" && state != "amber" && state != "green") {
    return Error(400, "state=\"" + state + "\": give red, amber or green");
  }
  auto ledger = OpenLedger();
  if (!ledger.ok()) return Error(503, ledger.status().message());
  auto r = report::ReadStatus(**ledger, o_.data_dir, report::WallNowNanos());
  if (!r.ok()) return Error(503, r.status().message());
  uint64_t counts[3] = {0, 0, 0}, matched = 0, head = 0, stored = 0, gaps = 0, lost = 0;
  std::string rows;
  const std::map<std::string, Firing> firing_by_stream = FiringByStream(r->alerts);
  for (const report::StreamStatus& s : r->streams) {
    const Judged j = Judge(s, firing_by_stream, r->now_ns, o_.agent_silent_s);
    const int k = j.state[0] == 'r' ? 0 : j.state[0] == 'a' ? 1 : 2;
    ++counts[k];
    head += s.head;
    stored += s.stored;
    gaps += static_cast<uint64_t>(s.open_gaps);
    lost += s.declared_losses;
    if (!state.empty() && state != j.state) continue;
    if (!filter.empty() && (s.agent + "/" + s.epoch).find(filter) == std::string::npos) continue;
    if (matched++ < *offset || matched > *offset + *limit) continue;
    rows += std::string(rows.empty() ? "" : ",\n  ") + StreamObject(s, j);
  }
  std::string firing;
  for (const auto& a : r->alerts) {
    firing += std::string(firing.empty() ? "" : ", ") + "{\"name\": " + JsonString(a.name) +
              ", \"subject\": " + JsonString(a.subject) +
              ", \"severity\": " + JsonString(a.severity) +
              ", \"summary\": " + JsonString(a.summary) + "}";
  }
  return Json(
      200,
      "{\"now_ns\": " + std::to_string(r->now_ns) +
          ", \"totals\": {\"streams\": " + std::to_string(r->streams.size()) +
          ", \"red\": " + std::to_string(counts[0]) + ", \"amber\": " + std::to_string(counts[1]) +
          ", \"green\": " + std::to_string(counts[2]) + ", \"head\": " + std::to_string(head) +
          ", \"stored\": " + std::to_string(stored) + ", \"open_gaps\": " + std::to_string(gaps) +
          ", \"declared_losses\": " + std::to_string(lost) + ", \"alerts\": " +
          std::to_string(r->alerts.size()) + "}, \"matched\": " + std::to_string(matched) +
          ", \"offset\": " + std::to_string(*offset) + ", \"limit\": " + std::to_string(*limit) +
          ", \"firing\": [" + firing + "], \"streams\": [\n  " + rows + "\n]}\n");
}

// One stream's timeline: its segments (seqs over time, from the query index), what is
// missing (the gaps report: declared with its reason, or not), the losses and gaps the
// monitors saw with their times, and its signed checkpoints and cosignatures.
http::ServerResponse Console::Stream(const Params& p) {
  if (Status s = Only(p, {"agent", "epoch"}); !s.ok()) return Error(400, s.message());
  auto ref = FindStream(o_.data_dir, Get(p, "agent"), Get(p, "epoch"));
  if (!ref.ok()) {
    return Error(ref.status().code() == StatusCode::kNotFound ? 404 : 400, ref.status().message());
  }
  env::Env* env = env::Env::Posix();
  auto gaps = report::ReadGaps(o_.data_dir, ref->agent, INT64_MIN, INT64_MAX);
  if (!gaps.ok()) return Error(503, gaps.status().message());
  std::erase_if(*gaps, [&](const report::StreamGaps& g) { return g.epoch != ref->epoch; });
  const store::Layout layout(o_.data_dir);
  std::string segments;
  auto listed = store::ListSegments(env, ref->dir);
  if (listed.ok()) {
    for (const auto& [base, name] : *listed) {
      const std::string seg = ref->dir + "/" + name;
      auto size = env->GetFileSize(seg);
      if (!size.ok()) continue;
      auto sum =
          query::ReadSummary(env, layout.SegmentIndex(ref->agent, ref->epoch, base), seg, *size);
      std::string obj =
          "{\"base\": " + std::to_string(base) + ", \"bytes\": " + std::to_string(*size);
      if (sum.ok() && *sum && (*sum)->min_time <= (*sum)->max_time) {
        const query::SegmentSummary& s = **sum;
        obj += ", \"first_seq\": " + std::to_string(s.first_seq) +
               ", \"end_seq\": " + std::to_string(s.end_seq) +
               ", \"min_time_ns\": " + std::to_string(s.min_time) +
               ", \"max_time_ns\": " + std::to_string(s.max_time) +
               ", \"open\": " + (s.open ? "true" : "false");
      } else {
        obj += ", \"indexed\": false";  // the indexer has not reached it yet
      }
      segments += std::string(segments.empty() ? "" : ", ") + obj + "}";
    }
  }
  std::string ledger_gaps, losses;
  if (auto ledger = OpenLedger(); ledger.ok()) {
    if (auto c = (*ledger)->Read(INT64_MAX); c.ok()) {
      for (const auto& g : c->gaps) {
        if (g.agent != ref->agent || g.epoch != ref->epoch) continue;
        ledger_gaps += std::string(ledger_gaps.empty() ? "" : ", ") +
                       "{\"first\": " + std::to_string(g.first) +
                       ", \"last\": " + std::to_string(g.last) +
                       ", \"opened_ns\": " + std::to_string(g.opened_ns) +
                       ", \"closed_ns\": " + std::to_string(g.closed_ns) + "}";
      }
      for (const auto& l : c->losses) {
        if (l.agent != ref->agent || l.epoch != ref->epoch) continue;
        losses +=
            std::string(losses.empty() ? "" : ", ") + "{\"first\": " + std::to_string(l.first) +
            ", \"last\": " + std::to_string(l.last) + ", \"reason\": " + JsonString(l.reason) +
            ", \"at_ns\": " + std::to_string(l.at_ns) + "}";
      }
    }
  }
  // Signed sizes: the collector's checkpoints (the newest 200), the witnessed ones with
  // their cosigners, the agent's own.
  auto sizes = [&](store::StreamFiles::NoteLog log, bool names) {
    std::vector<std::string> items;
    uint64_t count = 0;
    (void)store::ForEachCheckpoint(
        env, ref->dir,
        [&](std::string_view text) {
          auto note = checkpoint::ParseNote(text);
          if (!note.ok()) return;
          auto cp = checkpoint::ParseCheckpoint(note->text);
          if (!cp.ok()) return;
          ++count;
          std::string item = "{\"size\": " + std::to_string(cp->size);
          if (names) {
            std::string signers;
            for (const auto& sig : note->signatures) {
              signers += std::string(signers.empty() ? "" : ", ") + JsonString(sig.name);
            }
            item += ", \"signers\": [" + signers + "]";
          }
          items.push_back(item + "}");
          if (items.size() > 200) items.erase(items.begin());
        },
        log);
    std::string out = "{\"count\": " + std::to_string(count) + ", \"newest\": [";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out + "]}";
  };
  std::string missing = report::GapsJson(*gaps);
  while (!missing.empty() && missing.back() == '\n') missing.pop_back();
  return Json(
      200, "{\"agent\": " + JsonString(ref->agent) + ", \"epoch\": " + JsonString(ref->epoch) +
               ", \"gaps\": " + missing + ", \"segments\": [" + segments + "], \"ledger_gaps\": [" +
               ledger_gaps + "], \"losses\": [" + losses +
               "], \"checkpoints\": " + sizes(store::StreamFiles::NoteLog::kCheckpoints, false) +
               ", \"witnessed\": " + sizes(store::StreamFiles::NoteLog::kWitnessed, true) +
               ", \"agent_checkpoints\": " +
               sizes(store::StreamFiles::NoteLog::kAgentCheckpoints, false) + "}\n");
}

// Per source: records per bucket over the last day (10-minute buckets) or week (hours),
// the baseline the monitors expect of each bucket, and the volume alerts' periods.
http::ServerResponse Console::Sources(const Params& p) {
  if (Status s = Only(p, {"agent", "source", "range", "offset", "limit"}); !s.ok()) {
    return Error(400, s.message());
  }
  const std::string range = Get(p, "range").empty() ? "day" : Get(p, "range");
  if (range != "day" && range != "week") return Error(400, "range: give day or week");
  auto offset = Number(p, "offset", 0, UINT32_MAX);
  auto limit = Number(p, "limit", 20, 100);
  if (!offset.ok()) return Error(400, offset.status().message());
  if (!limit.ok()) return Error(400, limit.status().message());
  const int64_t bucket = range == "day" ? 10 : 60;  // minutes
  const int64_t buckets = range == "day" ? 144 : 168;
  const int64_t now_min = report::WallNowNanos() / (60 * report::kSecond);
  const int64_t end = now_min / bucket * bucket + bucket;
  const int64_t start = end - bucket * buckets;
  auto ledger = OpenLedger();
  if (!ledger.ok()) return Error(503, ledger.status().message());
  // The baselines look back history_days before the first bucket.
  auto c = (*ledger)->Read(start - o_.baseline.history_days * monitor::kMinutesPerDay);
  if (!c.ok()) return Error(503, c.status().message());
  std::map<std::pair<std::string, std::string>, monitor::SourceHistory> sources;
  for (const auto& row : c->counts) {
    if (!Get(p, "agent").empty() && row.agent != Get(p, "agent")) continue;
    if (!Get(p, "source").empty() && row.source != Get(p, "source")) continue;
    sources[{row.agent, row.source}].Add(row.minute, row.count);
  }
  std::string warning;
  const std::vector<Episode> episodes = ReadEpisodes(o_.alert_journal, &warning);
  std::string out;
  uint64_t index = 0;
  for (const auto& [key, history] : sources) {
    if (index++ < *offset || index > *offset + *limit) continue;
    std::string points;
    for (int64_t b = start; b < end; b += bucket) {
      const auto base = history.Expected(b, b + bucket, o_.baseline);
      points += std::string(points.empty() ? "" : ",") + "[" + std::to_string(b * 60) + "," +
                std::to_string(history.Count(b, b + bucket)) + "," +
                (base ? std::to_string(base->expected) : "null") + "]";
    }
    const std::string subject = key.first + "/" + key.second;
    std::string periods;
    for (const Episode& e : episodes) {
      if (e.last.subject != subject ||
          (e.last.name != "volume_drop" && e.last.name != "source_silent")) {
        continue;
      }
      periods += std::string(periods.empty() ? "" : ", ") +
                 "{\"name\": " + JsonString(e.last.name) +
                 ", \"from_ns\": " + std::to_string(e.last.started_ns) +
                 ", \"to_ns\": " + std::to_string(e.resolved_ns) + "}";
    }
    out += std::string(out.empty() ? "" : ",\n  ") + "{\"agent\": " + JsonString(key.first) +
           ", \"source\": " + JsonString(key.second) + ", \"points\": [" + points +
           "], \"alerts\": [" + periods + "]}";
  }
  return Json(200, "{\"range\": " + JsonString(range) +
                       ", \"bucket_seconds\": " + std::to_string(bucket * 60) +
                       ", \"drop_ratio\": " + std::to_string(o_.volume_drop_ratio) +
                       ", \"total\": " + std::to_string(sources.size()) +
                       (warning.empty() ? "" : ", \"warning\": " + JsonString(warning)) +
                       ", \"sources\": [\n  " + out + "\n]}\n");
}

http::ServerResponse Console::Alerts(const Params& p) {
  if (Status s = Only(p, {"state", "q", "offset", "limit"}); !s.ok()) {
    return Error(400, s.message());
  }
  const std::string state = Get(p, "state"), q = Get(p, "q");
  if (!state.empty() && state != "firing" && state != "resolved") {
    return Error(400, "state=\"" + state + "\": give firing or resolved (or leave it out)");
  }
  auto offset = Number(p, "offset", 0, UINT32_MAX);
  auto limit = Number(p, "limit", 100, kMaxPage);
  if (!offset.ok()) return Error(400, offset.status().message());
  if (!limit.ok()) return Error(400, limit.status().message());
  std::string warning;
  std::vector<Episode> episodes = ReadEpisodes(o_.alert_journal, &warning);
  std::reverse(episodes.begin(), episodes.end());  // newest first
  std::string out;
  uint64_t matched = 0;
  for (const Episode& e : episodes) {
    const bool firing = e.resolved_ns == 0;
    if (state == "firing" && !firing) continue;
    if (state == "resolved" && firing) continue;
    if (!q.empty() &&
        (e.last.name + " " + e.last.subject + " " + e.last.summary).find(q) == std::string::npos) {
      continue;
    }
    if (matched++ < *offset || matched > *offset + *limit) continue;
    std::string evidence;
    for (const auto& [k, v] : e.last.evidence) {
      evidence += std::string(evidence.empty() ? "" : ", ") + JsonString(k) + ": " + JsonString(v);
    }
    out += std::string(out.empty() ? "" : ",\n  ") + "{\"name\": " + JsonString(e.last.name) +
           ", \"subject\": " + JsonString(e.last.subject) +
           ", \"severity\": " + JsonString(e.last.severity) +
           ", \"state\": " + (firing ? "\"firing\"" : "\"resolved\"") +
           ", \"summary\": " + JsonString(e.last.summary) +
           ", \"started_ns\": " + std::to_string(e.last.started_ns) +
           ", \"resolved_ns\": " + std::to_string(e.resolved_ns) + ", \"evidence\": {" + evidence +
           "}}";
  }
  return Json(200, "{\"matched\": " + std::to_string(matched) +
                       (warning.empty() ? "" : ", \"warning\": " + JsonString(warning)) +
                       ", \"alerts\": [\n  " + out + "\n]}\n");
}

// `gapless query` with the same filters, a page at a time (offset counts matches).
http::ServerResponse Console::Search(const Params& p) {
  if (Status s = Only(p, {"agent", "epoch", "source", "host", "app", "from", "to", "severity",
                          "grep", "seq", "offset", "limit"});
      !s.ok()) {
    return Error(400, s.message());
  }
  auto offset = Number(p, "offset", 0, 1'000'000);
  auto limit = Number(p, "limit", 50, 500);
  if (!offset.ok()) return Error(400, offset.status().message());
  if (!limit.ok()) return Error(400, limit.status().message());
  query::Filter f;
  const int64_t now = report::WallNowNanos();
  for (auto [name, out] : {std::pair{"from", &f.from_ns}, std::pair{"to", &f.to_ns}}) {
    const std::string v = Get(p, name);
    if (v.empty()) continue;
    auto t = query::ParseTime(v, now);
    if (!t.ok()) return Error(400, std::string(name) + ": " + t.status().message());
    *out = *t;
  }
  if (!Get(p, "agent").empty()) f.agents.push_back(Get(p, "agent"));
  if (!Get(p, "source").empty()) f.sources.push_back(Get(p, "source"));
  f.epoch = Get(p, "epoch");
  f.host = Get(p, "host");
  f.app = Get(p, "app");
  if (!Get(p, "severity").empty()) {
    auto s = query::ParseSeverity(Get(p, "severity"));
    if (!s.ok()) return Error(400, "severity: " + s.status().message());
    f.min_severity = *s;
  }
  if (!Get(p, "seq").empty()) {
    auto r = query::ParseSeqRange(Get(p, "seq"));
    if (!r.ok()) return Error(400, "seq: " + r.status().message());
    f.seq_first = r->first;
    f.seq_last = r->second;
  }
  f.grep = Get(p, "grep");
  auto matcher = query::Matcher::Make(std::move(f));
  if (!matcher.ok()) return Error(400, "grep: " + matcher.status().message());
  query::RunOptions o;
  o.limit = *offset + *limit + 1;  // one more tells whether there is a next page
  uint64_t seen = 0, shown = 0;
  bool more = false;
  std::string out;
  query::RunStats stats;
  Status s = query::Run(
      env::Env::Posix(), o_.data_dir, **matcher, o,
      [&](const query::Match& m) {
        if (seen++ < *offset) return true;
        if (shown == *limit) {
          more = true;
          return false;
        }
        ++shown;
        const output::Provenance prov{m.stream->agent, m.stream->epoch, m.seq, m.leaf};
        std::string rec = output::FormatRecord(output::Shape::kJson, prov, m.type, m.payload).body;
        while (!rec.empty() && rec.back() == '\n') rec.pop_back();
        out += std::string(out.empty() ? "" : ",\n  ") +
               "{\"agent\": " + JsonString(m.stream->agent) +
               ", \"epoch\": " + JsonString(m.stream->epoch) +
               ", \"seq\": " + std::to_string(m.seq) + ", \"record\": " + rec + "}";
        return true;
      },
      &stats);
  if (!s.ok()) return Error(503, s.message());
  std::string warnings;
  for (const std::string& w : stats.warnings) {
    warnings += std::string(warnings.empty() ? "" : ", ") + JsonString(w);
  }
  return Json(200, "{\"offset\": " + std::to_string(*offset) + ", \"count\": " +
                       std::to_string(shown) + ", \"more\": " + (more ? "true" : "false") +
                       ", \"scanned\": " + std::to_string(stats.scanned) + ", \"warnings\": [" +
                       warnings + "], \"results\": [\n  " + out + "\n]}\n");
}

http::ServerResponse Console::Proof(const std::string& kind, const Params& p) {
  const char* number = kind == "inclusion" ? "seq" : "old_size";
  if (Status s = Only(p, {"agent", "epoch", number, "witnessed"}); !s.ok()) {
    return Error(400, s.message());
  }
  if (Get(p, "agent").empty()) return Error(400, "agent: required");
  if (p.find(number) == p.end()) return Error(400, std::string(number) + ": required");
  auto n = Number(p, number, 0, UINT64_MAX);
  if (!n.ok()) return Error(400, n.status().message());
  const std::string w = Get(p, "witnessed");
  if (!w.empty() && w != "0" && w != "1") return Error(400, "witnessed: give 0 or 1");
  if (!prover_) prover_ = std::make_unique<proof::Prover>(env::Env::Posix(), o_.data_dir);
  auto doc = kind == "inclusion"
                 ? prover_->Inclusion(Get(p, "agent"), Get(p, "epoch"), *n, w == "1")
                 : prover_->Consistency(Get(p, "agent"), Get(p, "epoch"), *n, w == "1");
  if (!doc.ok()) {
    const StatusCode c = doc.status().code();
    return Error(c == StatusCode::kNotFound          ? 404
                 : c == StatusCode::kInvalidArgument ? 400
                                                     : 409,
                 doc.status().message());
  }
  ServerResponse out = Json(200, *doc);
  out.headers.push_back({"Content-Disposition", "attachment; filename=\"" + kind + "-" +
                                                    Get(p, "agent") + "-" + std::to_string(*n) +
                                                    ".json\""});
  return out;
}

StatusOr<std::unique_ptr<http::Server>> Serve(const ServeOptions& s, ConsoleOptions o) {
  http::ServerOptions so;
  so.what = "console";
  so.max_body = 0;
  const bool loopback = IsLoopbackListen(s.listen);
  if (!s.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string token, identity::ReadSecretFile(s.token_file));
    while (!token.empty() &&
           (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
      token.pop_back();
    }
    if (token.size() < 16) {
      return InvalidArgumentError("console token file " + s.token_file +
                                  " holds under 16 characters: put a long random token in it "
                                  "(head -c 32 /dev/urandom | base64)");
    }
    o.token = std::move(token);
  }
  o.accept_client_cert = !s.client_ca.empty();
  o.open = loopback && o.token.empty() && s.client_ca.empty();
  if (!loopback) {
    if (o.token.empty() && s.client_ca.empty()) {
      return InvalidArgumentError("console_listen " + s.listen +
                                  " is not on loopback: set console_token_file or "
                                  "console_client_ca (and the console serves TLS)");
    }
    so.tls_cert = s.tls_cert;
    ASSIGN_OR_RETURN(so.tls_key_pem, identity::ReadSecretFile(s.tls_key));
    so.client_ca = s.client_ca;
  } else if (!s.client_ca.empty()) {
    so.tls_cert = s.tls_cert;  // client certificates need TLS even on loopback
    ASSIGN_OR_RETURN(so.tls_key_pem, identity::ReadSecretFile(s.tls_key));
    so.client_ca = s.client_ca;
  }
  auto console = std::make_shared<Console>(std::move(o));
  return http::Server::Start(
      s.listen, [console](const http::ServerRequest& r) { return console->Handle(r); }, so);
}

}  // namespace gapless::console
