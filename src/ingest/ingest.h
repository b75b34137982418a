// Ingest: the one path from every input into the spool, and the group-commit engine.
//
// Inputs call Append with a parsed event; it is encoded and appended (not yet durable).
// A committer thread syncs the spool whenever appended records are not yet durable, so
// fsyncs are shared by everything appended meanwhile (group commit), and it runs the
// OnDurable callbacks of inputs that must acknowledge only durable data (RELP, HTTP).
// Under the `block` policy a full spool refuses the append (kResourceExhausted): the
// input keeps the message, stops reading, and asks OnRoom to be called back. A spool
// with a sticky write error (a full or failing disk) refuses the same way, with
// kResourceExhausted naming the error: inputs wait exactly as for a full spool, nothing is
// dropped, and once the owner's Heal() succeeds OnRoom calls them back. Records appended
// before the failure stay pending (their OnDurable callbacks wait) and are written again
// by the heal with the same seqs, so no sender is asked to resend what the spool keeps.
//
// Thread contract: Append, AppendLoss, OnDurable and OnRoom may be called from any thread.
// Callbacks run on Ingest's own threads (committer: OnDurable; room watcher: OnRoom) and
// must not block; inputs post them to their event loop. mu_ is never held while a
// callback or spool I/O runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "event/event.h"
#include "spool/spool.h"

namespace gapless::ingest {

struct Stats {
  uint64_t appended = 0;          // data records appended
  uint64_t refused_full = 0;      // appends refused by a full spool (the input retried later)
  uint64_t refused_failed = 0;    // appends refused by a sticky write error (retried after heal)
  uint64_t loss_records = 0;      // loss records appended by inputs
  uint64_t commits = 0;           // group commits (spool syncs) run by the committer
  uint64_t waiting_for_room = 0;  // OnRoom callbacks pending now: inputs blocked by a full spool
};

class Ingest {
 public:
  using DurableFn = std::function<void(const Status&)>;
  using RoomFn = std::function<void()>;

  // `spool` must outlive this object. Starts the committer and room-watcher threads.
  // commit_delay_us: how long the committer lets appends gather before each fsync once
  // something is pending (the bound it adds to durability latency); 0 syncs at once.
  explicit Ingest(spool::Spool* spool, int64_t commit_delay_us = 0);
  ~Ingest();  // Stop()
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  // Runs a last sync, calls the OnDurable callbacks it covers and fails the others with
  // kUnavailable, forgets pending OnRoom callbacks (stop the inputs first), joins the
  // threads. Idempotent.
  void Stop();

  // Encodes `e` and appends it (see Spool::Append: a drop_newest drop is reported in the
  // result and accounted for by a LOSS record). kResourceExhausted: full under the block
  // policy, or a sticky write error waiting for Heal; nothing written. kFailedPrecondition:
  // the spool is closed.
  // `position`: the input's position after this record (Spool::Append).
  StatusOr<spool::AppendResult> Append(const event::Event& e,
                                       const spool::PositionUpdate* position = nullptr);
  StatusOr<uint64_t> AppendLoss(const spool::LossRecord& loss);
  // An input's read position after everything it appended so far, without a record
  // (Spool::SetPosition); durable with the next group commit.
  Status SetPosition(std::string_view key, std::string_view value);

  // Calls fn once records [0, seq_end) are durable (Ok). A failed sync does not call it:
  // the records stay pending in the spool until Heal() writes them again (then Ok); only
  // Stop fails what is still waiting.
  void OnDurable(uint64_t seq_end, DurableFn fn);
  // Calls fn once an append of `bytes` would fit (or at Stop).
  void OnRoom(size_t bytes, RoomFn fn);

  // Spool::Heal, then completes the callbacks and wakes the inputs it lets go on. Ok when
  // there was nothing to heal; otherwise the error (still sticky: call again later).
  Status Heal();

  spool::Spool* spool() const { return spool_; }
  Stats stats() const;

 private:
  void CommitterLoop();
  void RoomLoop();
  void WakeCommitter();
  // A refusal by a sticky error as kResourceExhausted (the inputs wait and retry).
  Status AsWaitable(const Status& s);

  spool::Spool* const spool_;
  const int64_t commit_delay_us_;
  std::atomic<bool> dirty_{false};  // appended since the committer last looked
  std::atomic<bool> committer_idle_{false};
  std::atomic<uint64_t> appended_{0};
  std::atomic<uint64_t> refused_full_{0};
  std::atomic<uint64_t> refused_failed_{0};
  std::atomic<uint64_t> loss_records_{0};
  std::atomic<uint64_t> commits_{0};

  mutable std::mutex mu_;
  std::condition_variable committer_cv_;
  std::condition_variable room_cv_;
  bool stop_ = false;                                // GUARDED_BY(mu_)
  std::multimap<uint64_t, DurableFn> durable_fns_;   // by seq_end; GUARDED_BY(mu_)
  std::vector<std::pair<size_t, RoomFn>> room_fns_;  // GUARDED_BY(mu_)
  std::thread committer_;
  std::thread room_watcher_;
};

}  // namespace gapless::ingest
