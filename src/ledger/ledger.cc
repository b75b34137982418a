#include "ledger/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gapless::ledger {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS streams(
  agent TEXT NOT NULL, epoch TEXT NOT NULL,
  first_seen_ns INTEGER NOT NULL, last_heartbeat_ns INTEGER NOT NULL,
  agent_wall_ns INTEGER NOT NULL, head INTEGER NOT NULL, stored INTEGER NOT NULL,
  stored_moved_ns INTEGER NOT NULL, spool_bytes INTEGER NOT NULL,
  spool_quota INTEGER NOT NULL,
  PRIMARY KEY(agent, epoch));
CREATE TABLE IF NOT EXISTS gaps(
  agent TEXT NOT NULL, epoch TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
  opened_ns INTEGER NOT NULL, closed_ns INTEGER NOT NULL,
  PRIMARY KEY(agent, epoch, first));
CREATE TABLE IF NOT EXISTS losses(
  agent TEXT NOT NULL, epoch TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
  reason TEXT NOT NULL, at_ns INTEGER NOT NULL,
  PRIMARY KEY(agent, epoch, first));
CREATE TABLE IF NOT EXISTS checkpoints(
  agent TEXT NOT NULL, epoch TEXT NOT NULL, size INTEGER NOT NULL, at_ns INTEGER NOT NULL,
  valid INTEGER NOT NULL, detail TEXT NOT NULL,
  PRIMARY KEY(agent, epoch, size));
CREATE TABLE IF NOT EXISTS alerts(
  name TEXT NOT NULL, subject TEXT NOT NULL, severity TEXT NOT NULL, summary TEXT NOT NULL,
  started_ns INTEGER NOT NULL,
  PRIMARY KEY(name, subject));
CREATE TABLE IF NOT EXISTS source_minutes(
  agent TEXT NOT NULL, source TEXT NOT NULL, minute INTEGER NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(agent, source, minute)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outputs(
  output TEXT NOT NULL, agent TEXT NOT NULL, epoch TEXT NOT NULL, type TEXT NOT NULL,
  confirmed INTEGER NOT NULL, signed INTEGER NOT NULL, delivered INTEGER NOT NULL,
  retried INTEGER NOT NULL, rejected INTEGER NOT NULL, lag_ms INTEGER NOT NULL,
  stalled INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
  PRIMARY KEY(output, agent, epoch));
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Uint(int i, uint64_t v) { return Int(i, static_cast<int64_t>(v)); }
  // Runs a statement that returns no rows, then resets it for the next bindings.
  bool Run() {
    const int rc = sqlite3_step(s_);
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return rc == SQLITE_DONE;
  }
  bool Row() {
    step_rc_ = sqlite3_step(s_);
    return step_rc_ == SQLITE_ROW;
  }
  bool Done() const { return step_rc_ == SQLITE_DONE; }  // after Row() said no more
  std::string ColText(int i) const {
    const auto* p = sqlite3_column_text(s_, i);
    return p == nullptr ? "" : std::string(reinterpret_cast<const char*>(p));
  }
  int64_t ColInt(int i) const { return sqlite3_column_int64(s_, i); }
  uint64_t ColUint(int i) const { return static_cast<uint64_t>(ColInt(i)); }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
  int step_rc_ = SQLITE_DONE;
};

Status SqlError(sqlite3* db, const std::string& path, const std::string& what) {
  return InternalError("ledger " + path + ": " + what + ": " +
                       (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

}  // namespace

StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, bool read_only) {
  if (!read_only) {  // created 0600 before SQLite opens it: it names agents and sources
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return InternalError("ledger " + path + ": cannot create: " + std::strerror(errno));
    }
    ::close(fd);
  }
  std::unique_ptr<Ledger> l(new Ledger());
  l->path_ = path;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(path.c_str(), &l->db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    return SqlError(l->db_, path, "cannot open");
  }
  sqlite3_busy_timeout(l->db_, 5000);
  std::lock_guard<std::mutex> lock(l->mu_);
  if (read_only) {
    Stmt v(l->db_, "SELECT value FROM meta WHERE key = 'schema'");
    if (!v.ok() || !v.Row()) {
      return FailedPreconditionError("ledger " + path + ": not a gapless ledger (no schema)");
    }
    if (v.ColText(0) != std::to_string(kSchemaVersion)) {
      return FailedPreconditionError("ledger " + path + ": schema " + v.ColText(0) +
                                     ", this gapless reads " + std::to_string(kSchemaVersion));
    }
    return l;
  }
  // WAL: readers (gapless status) never block the writer; NORMAL: a power cut may lose
  // the last second of derived state, never corrupt it.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchema}) {
    if (Status s = l->Exec(sql); !s.ok()) return s;
  }
  if (Status s = l->Exec("INSERT OR IGNORE INTO meta VALUES('schema', '" +
                         std::to_string(kSchemaVersion) + "')");
      !s.ok()) {
    return s;
  }
  return l;
}

Ledger::~Ledger() { sqlite3_close_v2(db_); }

Status Ledger::Exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return Status::Ok();
  const std::string what = err != nullptr ? err : "error";
  sqlite3_free(err);
  return InternalError("ledger " + path_ + ": " + what);
}

Status Ledger::Write(const Delta& d) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  bool ok = true;
  {
    Stmt st(db_, "INSERT OR REPLACE INTO streams VALUES(?,?,?,?,?,?,?,?,?,?)");
    ok = ok && st.ok();
    for (const StreamRow& r : d.streams) {
      ok = ok && st.Text(1, r.agent)
                     .Text(2, r.epoch)
                     .Int(3, r.first_seen_ns)
                     .Int(4, r.last_heartbeat_ns)
                     .Int(5, r.agent_wall_ns)
                     .Uint(6, r.head)
                     .Uint(7, r.stored)
                     .Int(8, r.stored_moved_ns)
                     .Uint(9, r.spool_bytes)
                     .Uint(10, r.spool_quota)
                     .Run();
    }
    Stmt gp(db_, "INSERT OR REPLACE INTO gaps VALUES(?,?,?,?,?,?)");
    ok = ok && gp.ok();
    for (const GapRow& r : d.gaps) {
      ok = ok && gp.Text(1, r.agent)
                     .Text(2, r.epoch)
                     .Uint(3, r.first)
                     .Uint(4, r.last)
                     .Int(5, r.opened_ns)
                     .Int(6, r.closed_ns)
                     .Run();
    }
    Stmt ls(db_, "INSERT OR REPLACE INTO losses VALUES(?,?,?,?,?,?)");
    ok = ok && ls.ok();
    for (const LossRow& r : d.losses) {
      ok = ok && ls.Text(1, r.agent)
                     .Text(2, r.epoch)
                     .Uint(3, r.first)
                     .Uint(4, r.last)
                     .Text(5, r.reason)
                     .Int(6, r.at_ns)
                     .Run();
    }
    Stmt cp(db_, "INSERT OR REPLACE INTO checkpoints VALUES(?,?,?,?,?,?)");
    ok = ok && cp.ok();
    for (const CheckpointRow& r : d.checkpoints) {
      ok = ok && cp.Text(1, r.agent)
                     .Text(2, r.epoch)
                     .Uint(3, r.size)
                     .Int(4, r.at_ns)
                     .Int(5, r.valid ? 1 : 0)
                     .Text(6, r.detail)
                     .Run();
    }
    if (d.replace_alerts) {
      Stmt del(db_, "DELETE FROM alerts");
      ok = ok && del.ok() && del.Run();
      Stmt al(db_, "INSERT OR REPLACE INTO alerts VALUES(?,?,?,?,?)");
      ok = ok && al.ok();
      for (const AlertRow& r : d.alerts) {
        ok = ok && al.Text(1, r.name)
                       .Text(2, r.subject)
                       .Text(3, r.severity)
                       .Text(4, r.summary)
                       .Int(5, r.started_ns)
                       .Run();
      }
    }
    Stmt cn(db_, "INSERT OR REPLACE INTO source_minutes VALUES(?,?,?,?)");
    ok = ok && cn.ok();
    for (const CountRow& r : d.counts) {
      ok = ok && cn.Text(1, r.agent).Text(2, r.source).Int(3, r.minute).Uint(4, r.count).Run();
    }
    Stmt op(db_, "INSERT OR REPLACE INTO outputs VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    ok = ok && op.ok();
    for (const OutputRow& r : d.outputs) {
      ok = ok && op.Text(1, r.output)
                     .Text(2, r.agent)
                     .Text(3, r.epoch)
                     .Text(4, r.type)
                     .Int(5, r.confirmed ? 1 : 0)
                     .Uint(6, r.signed_size)
                     .Uint(7, r.delivered)
                     .Uint(8, r.retried)
                     .Uint(9, r.rejected)
                     .Int(10, r.lag_ms)
                     .Int(11, r.stalled ? 1 : 0)
                     .Int(12, r.updated_ns)
                     .Run();
    }
    if (d.forget_counts_before != 0) {
      Stmt fg(db_, "DELETE FROM source_minutes WHERE minute < ?");
      ok = ok && fg.ok() && fg.Int(1, d.forget_counts_before).Run();
    }
  }
  if (!ok) {
    const Status s = SqlError(db_, path_, "write");
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

StatusOr<Contents> Ledger::Read(int64_t counts_since_minute) const {
  std::lock_guard<std::mutex> lock(mu_);
  // One read transaction: every table as of one commit.
  if (Status s = Exec("BEGIN"); !s.ok()) return s;
  Contents c;
  bool ok = true;
  {
    Stmt st(db_, "SELECT * FROM streams ORDER BY agent, epoch");
    ok = ok && st.ok();
    while (ok && st.Row()) {
      c.streams.push_back({st.ColText(0), st.ColText(1), st.ColInt(2), st.ColInt(3), st.ColInt(4),
                           st.ColUint(5), st.ColUint(6), st.ColInt(7), st.ColUint(8),
                           st.ColUint(9)});
    }
    ok = ok && st.Done();
    Stmt gp(db_, "SELECT * FROM gaps ORDER BY agent, epoch, first");
    ok = ok && gp.ok();
    while (ok && gp.Row()) {
      c.gaps.push_back(
          {gp.ColText(0), gp.ColText(1), gp.ColUint(2), gp.ColUint(3), gp.ColInt(4), gp.ColInt(5)});
    }
    ok = ok && gp.Done();
    Stmt ls(db_, "SELECT * FROM losses ORDER BY agent, epoch, first");
    ok = ok && ls.ok();
    while (ok && ls.Row()) {
      c.losses.push_back({ls.ColText(0), ls.ColText(1), ls.ColUint(2), ls.ColUint(3), ls.ColText(4),
                          ls.ColInt(5)});
    }
    ok = ok && ls.Done();
    Stmt cp(db_,
            "SELECT c.* FROM checkpoints c JOIN (SELECT agent, epoch, MAX(size) AS size FROM "
            "checkpoints GROUP BY agent, epoch) m USING (agent, epoch, size) "
            "ORDER BY agent, epoch");
    ok = ok && cp.ok();
    while (ok && cp.Row()) {
      c.checkpoints.push_back({cp.ColText(0), cp.ColText(1), cp.ColUint(2), cp.ColInt(3),
                               cp.ColInt(4) != 0, cp.ColText(5)});
    }
    ok = ok && cp.Done();
    Stmt al(db_, "SELECT * FROM alerts ORDER BY name, subject");
    ok = ok && al.ok();
    while (ok && al.Row()) {
      c.alerts.push_back(
          {al.ColText(0), al.ColText(1), al.ColText(2), al.ColText(3), al.ColInt(4)});
    }
    ok = ok && al.Done();
    Stmt cn(db_, "SELECT * FROM source_minutes WHERE minute >= ? ORDER BY agent, source, minute");
    ok = ok && cn.ok();
    cn.Int(1, counts_since_minute);
    while (ok && cn.Row()) {
      c.counts.push_back({cn.ColText(0), cn.ColText(1), cn.ColInt(2), cn.ColUint(3)});
    }
    ok = ok && cn.Done();
    Stmt op(db_, "SELECT * FROM outputs ORDER BY output, agent, epoch");
    ok = ok && op.ok();
    while (ok && op.Row()) {
      c.outputs.push_back({op.ColText(0), op.ColText(1), op.ColText(2), op.ColText(3),
                           op.ColInt(4) != 0, op.ColUint(5), op.ColUint(6), op.ColUint(7),
                           op.ColUint(8), op.ColInt(9), op.ColInt(10) != 0, op.ColInt(11)});
    }
    ok = ok && op.Done();
  }
  if (!ok) {
    const Status s = SqlError(db_, path_, "read");
    (void)Exec("ROLLBACK");
    return s;
  }
  if (Status s = Exec("COMMIT"); !s.ok()) return s;
  return c;
}

}  // namespace gapless::ledger
