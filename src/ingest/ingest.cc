#include "ingest/ingest.h"

#include <algorithm>
#include <chrono>

namespace gapless::ingest {

Ingest::Ingest(spool::Spool* spool, int64_t commit_delay_us)
    : spool_(spool), commit_delay_us_(commit_delay_us) {
  committer_ = std::thread([this] { CommitterLoop(); });
  room_watcher_ = std::thread([this] { RoomLoop(); });
}

Ingest::~Ingest() { Stop(); }

void Ingest::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
    room_fns_.clear();
  }
  committer_cv_.notify_all();
  room_cv_.notify_all();
  committer_.join();
  room_watcher_.join();
}

StatusOr<spool::AppendResult> Ingest::Append(const event::Event& e,
                                             const spool::PositionUpdate* position) {
  thread_local std::string buffer;
  buffer.clear();
  event::EncodeEvent(e, &buffer);
  StatusOr<spool::AppendResult> r = spool_->Append(buffer, position);
  if (r.ok()) {
    appended_.fetch_add(1, std::memory_order_relaxed);
    WakeCommitter();
  } else if (r.status().code() == StatusCode::kResourceExhausted) {
    refused_full_.fetch_add(1, std::memory_order_relaxed);
  } else {
    return AsWaitable(r.status());
  }
  return r;
}

StatusOr<uint64_t> Ingest::AppendLoss(const spool::LossRecord& loss) {
  StatusOr<uint64_t> r = spool_->AppendLoss(loss);
  if (r.ok()) {
    loss_records_.fetch_add(1, std::memory_order_relaxed);
    WakeCommitter();
  } else if (r.status().code() != StatusCode::kResourceExhausted) {
    return AsWaitable(r.status());
  }
  return r;
}

Status Ingest::AsWaitable(const Status& s) {
  if (s.code() != StatusCode::kFailedPrecondition) return s;
  const Status sticky = spool_->sticky_error();
  if (sticky.ok()) return s;  // closed, not failed
  refused_failed_.fetch_add(1, std::memory_order_relaxed);
  return ResourceExhaustedError("the spool cannot write (" + sticky.message() +
                                "); waiting for it to heal");
}

Status Ingest::Heal() {
  const Status s = spool_->Heal();
  if (s.ok()) {
    WakeCommitter();  // completes the callbacks the healed records were waiting on
    room_cv_.notify_all();
  }
  return s;
}

Status Ingest::SetPosition(std::string_view key, std::string_view value) {
  Status s = spool_->SetPosition(key, value);
  if (s.ok()) WakeCommitter();  // durable with the next group commit
  return s;
}

void Ingest::WakeCommitter() {
  // Paired with CommitterLoop: either it sees dirty_ before sleeping, or we see it idle
  // and notify under mu_ (both are seq_cst, so one of the two must happen).
  dirty_.store(true);
  if (committer_idle_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    committer_cv_.notify_one();
  }
}

void Ingest::OnDurable(uint64_t seq_end, DurableFn fn) {
  if (seq_end <= spool_->durable_size()) {
    fn(Status::Ok());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      durable_fns_.emplace(seq_end, std::move(fn));
      fn = nullptr;
    }
  }
  if (fn) {
    fn(UnavailableError("ingest stopped before the records were durable"));
    return;
  }
  WakeCommitter();
}

void Ingest::OnRoom(size_t bytes, RoomFn fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    room_fns_.emplace_back(bytes, std::move(fn));
  }
  room_cv_.notify_one();
}

void Ingest::CommitterLoop() {
  for (bool last = false; !last;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      committer_idle_.store(true);
      committer_cv_.wait(lock, [&] { return stop_ || dirty_.load(); });
      committer_idle_.store(false);
      last = stop_;
      dirty_.store(false);
    }
    if (!last && commit_delay_us_ > 0) {
      // Let a batch gather: one fsync for ~commit_delay of appends instead of many tiny
      // ones. It bounds the added latency; Stop skips it.
      std::unique_lock<std::mutex> lock(mu_);
      committer_cv_.wait_for(lock, std::chrono::microseconds(commit_delay_us_),
                             [&] { return stop_; });
    }
    const Status synced = spool_->Sync();
    commits_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t durable = spool_->durable_size();
    std::vector<std::pair<DurableFn, Status>> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // After a failed sync the waiting records are still pending in the spool, and Heal
      // writes them again: their callbacks wait for that instead of failing (a failure
      // would make senders resend records the spool keeps). Stop fails what is left.
      auto end = last ? durable_fns_.end() : durable_fns_.upper_bound(durable);
      for (auto it = durable_fns_.begin(); it != end; ++it) {
        Status s = it->first <= durable ? Status::Ok()
                   : !synced.ok()
                       ? UnavailableError("ingest stopped while the spool could not write: " +
                                          synced.message())
                       : UnavailableError("ingest stopped");
        ready.emplace_back(std::move(it->second), std::move(s));
      }
      durable_fns_.erase(durable_fns_.begin(), end);
    }
    for (auto& [fn, s] : ready) fn(s);
  }
}

void Ingest::RoomLoop() {
  for (;;) {
    size_t need = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      room_cv_.wait(lock, [&] { return stop_ || !room_fns_.empty(); });
      if (stop_) return;
      for (const auto& [bytes, fn] : room_fns_) need = std::max(need, bytes);
    }
    if (!spool_->WaitForRoom(need, 100)) continue;
    std::vector<std::pair<size_t, RoomFn>> fns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      fns.swap(room_fns_);
    }
    for (auto& [bytes, fn] : fns) fn();
  }
}

Stats Ingest::stats() const {
  Stats s;
  s.appended = appended_.load(std::memory_order_relaxed);
  s.refused_full = refused_full_.load(std::memory_order_relaxed);
  s.refused_failed = refused_failed_.load(std::memory_order_relaxed);
  s.loss_records = loss_records_.load(std::memory_order_relaxed);
  s.commits = commits_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  s.waiting_for_room = room_fns_.size();
  return s;
}

}  // namespace gapless::ingest
