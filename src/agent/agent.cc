#include "agent/agent.h"

#include <boost/asio.hpp>
#include <future>

#include "base/log.h"
#include "base/sha256.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "identity/identity.h"

namespace gapless::agent {

namespace asio = boost::asio;

struct Agent::Running {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  // Parallel vectors, touched only on the input thread once it runs.
  std::vector<config::InputConfig> configs;
  std::vector<std::unique_ptr<input::Input>> inputs;
};

StatusOr<std::unique_ptr<Agent>> Agent::Start(const config::AgentConfig& cfg,
                                              spool::RecoveryReport* report) {
  std::unique_ptr<Agent> a(new Agent());
  a->cfg_ = cfg;
  env::Env* env = env::Env::Posix();
  a->clock_ = env->clock();
  if (Status c = env->CreateDir(env::JoinPath(cfg.data_dir, "state")); !c.ok()) {
    return Status(c.code(), "cannot create data_dir " + cfg.data_dir + ": " + c.message());
  }
  alert::AlertOptions ao = cfg.alerts;
  if (ao.journal.empty()) ao.journal = env::JoinPath(cfg.data_dir, "alerts.jsonl");
  ASSIGN_OR_RETURN(a->alerts_, alert::Alerts::Open(env, ao));
  ASSIGN_OR_RETURN(
      a->spool_, spool::Spool::Open(env, env::JoinPath(cfg.data_dir, "spool"), cfg.spool, report));
  a->ForgetRemovedDestinations(cfg.destinations);
  a->ingest_ = std::make_unique<ingest::Ingest>(a->spool_.get(), cfg.commit_delay_ms * 1000);
  a->running_ = std::make_unique<Running>();
  for (const config::InputConfig& in : cfg.inputs) {
    if (Status s = a->StartInput(in); !s.ok()) {
      a->Stop();
      return s;
    }
  }
  a->input_thread_ = std::thread([r = a->running_.get()] { r->io.run(); });
  if (!cfg.destinations.empty()) {
    auto key = identity::SigningKey::Load(cfg.key_file);
    if (!key.ok()) {
      a->Stop();
      return Status(key.status().code(), "agent key: " + key.status().message() +
                                             " (make one with: gapless keygen --out " +
                                             cfg.key_file + ")");
    }
    a->identity_.agent_id = cfg.id;
    a->identity_.key = std::shared_ptr<const identity::SigningKey>(std::move(*key));
    if (!cfg.enroll_token_file.empty()) {
      auto token = identity::ReadSecretFile(cfg.enroll_token_file);
      if (!token.ok()) {
        a->Stop();
        return Status(token.status().code(), "enroll_token_file: " + token.status().message());
      }
      std::string t = *token;
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      if (t.size() < identity::kMinEnrollTokenBytes) {
        a->Stop();
        return InvalidArgumentError("enroll_token_file: " + cfg.enroll_token_file + " holds a " +
                                    std::to_string(t.size()) + "-byte token; at least " +
                                    std::to_string(identity::kMinEnrollTokenBytes) +
                                    " bytes are required (for example: openssl rand -hex 16)");
      }
      a->identity_.enroll_token = t;
    }
    for (const transport::DestinationOptions& d : cfg.destinations) {
      if (Status s = a->StartSender(d); !s.ok()) {
        a->Stop();
        return s;
      }
    }
    a->watchdog_ = std::thread([p = a.get()] { p->WatchdogLoop(); });
  }
  a->alert_rules_ = std::make_unique<AgentAlerts>(a->alerts_.get(), cfg.id, cfg.alert_rules);
  a->disk_watch_ = std::make_unique<alert::DiskSpaceWatch>(a->alerts_.get(),
                                                           std::vector<std::string>{cfg.data_dir});
  a->alert_thread_ = std::thread([p = a.get()] { p->AlertLoop(); });
  if (!cfg.metrics_listen.empty()) {
    Agent* p = a.get();
    auto m = metrics::StartEndpoint(
        cfg.metrics_listen, [p] { return p->MetricsText(); }, [p] { return p->CheckHealth(); },
        "agent");
    if (!m.ok()) {
      a->Stop();
      return m.status();
    }
    a->metrics_ = std::move(*m);
  }
  return a;
}

Status Agent::StartSender(const transport::DestinationOptions& d) {
  ASSIGN_OR_RETURN(auto sender, transport::Sender::Start(spool_.get(), identity_, d, [this] {
                     MutexLock lock(&checkpoint_mu_);
                     return latest_checkpoint_;
                   }));
  ASSIGN_OR_RETURN(auto heartbeat, StartHeartbeat(d));
  LogInfo("destination " + d.name + " → " + d.address +
          (d.required ? " (required)" : " (optional)"));
  MutexLock lock(&watch_mu_);
  senders_.push_back(Watched{std::move(sender), d, 0, 0, std::move(heartbeat)});
  return Status::Ok();
}

StatusOr<std::shared_ptr<transport::Heartbeater>> Agent::StartHeartbeat(
    const transport::DestinationOptions& d) {
  if (cfg_.heartbeat_interval_ms <= 0) return std::shared_ptr<transport::Heartbeater>();
  ASSIGN_OR_RETURN(auto h,
                   transport::Heartbeater::Start(
                       d, identity_, spool_->epoch(), [this] { return HeartbeatSnapshot(); },
                       cfg_.heartbeat_interval_ms, clock_));
  return std::shared_ptr<transport::Heartbeater>(std::move(h));
}

void Agent::MaybeSignCheckpoint(bool force) {
  if (identity_.key == nullptr || cfg_.heartbeat_interval_ms <= 0) return;
  const int64_t now = clock_->MonotonicNanos();
  const uint64_t size = spool_->durable_size_lock_free();
  if (size == checkpoint_size_ ||
      (!force && now - checkpoint_signed_ns_ < cfg_.heartbeat_interval_ms * 1'000'000)) {
    return;
  }
  auto tree = spool_->DurableCheckpoint();
  if (!tree.ok()) return;  // the Merkle state was lost to corruption: nothing to sign
  checkpoint::Checkpoint cp;
  cp.origin = checkpoint::AgentOrigin(identity_.agent_id,
                                      HexEncode(spool_->epoch().data(), spool_->epoch().size()));
  cp.size = tree->size;
  cp.root = tree->root;
  auto note = checkpoint::SignNote(checkpoint::FormatCheckpoint(cp),
                                   checkpoint::AgentKeyName(identity_.agent_id), *identity_.key);
  if (!note.ok()) return;
  checkpoint_size_ = tree->size;
  checkpoint_signed_ns_ = now;
  MutexLock lock(&checkpoint_mu_);
  latest_checkpoint_ = std::move(*note);
}

wire::Heartbeat Agent::HeartbeatSnapshot() const {
  wire::Heartbeat hb;
  hb.agent_wall_ns = clock_->NowNanos();
  hb.head_seq = spool_->durable_size_lock_free();
  hb.spool_bytes = spool_->bytes_used_lock_free();
  hb.spool_quota = spool_->quota_bytes();
  hb.dropped_records = spool_->dropped_records_lock_free();
  {
    MutexLock lock(&checkpoint_mu_);
    hb.checkpoint = latest_checkpoint_;
  }
  MutexLock lock(&watch_mu_);
  for (const Watched& w : senders_)
    hb.destinations.push_back({w.options.name, w.sender->stats().acked_next});
  return hb;
}

// A cursor whose destination left the configuration would hold the spool's segments for
// ever (a required one) until the spool is full and refuses input; it is removed, loudly.
void Agent::ForgetRemovedDestinations(const std::vector<transport::DestinationOptions>& kept) {
  for (const std::string& name : spool_->CursorNames()) {
    if (std::any_of(kept.begin(), kept.end(), [&](const auto& d) { return d.name == name; })) {
      continue;
    }
    const StatusOr<uint64_t> at = spool_->CursorPosition(name);
    const uint64_t head = spool_->durable_size();
    const uint64_t unacked = at.ok() && *at < head ? head - *at : 0;
    LogWarning(
        "destination " + name + " is no longer configured: its spool cursor is removed, and the " +
        std::to_string(unacked) + " records it had not acknowledged are no longer kept for it");
    if (Status s = spool_->RemoveCursor(name); !s.ok()) {
      LogError("removing the spool cursor of " + name + ": " + s.ToString());
    }
  }
}

void Agent::WatchdogLoop() {
  using namespace std::chrono;
  const int64_t stall_ns = cfg_.watchdog_stall_ms * 1'000'000;
  const auto tick = milliseconds(std::clamp<int64_t>(cfg_.watchdog_stall_ms / 10, 10, 1000));
  for (;;) {
    {
      MutexLock wait(&watch_mu_);
      if (!stop_watchdog_) watch_cv_.WaitFor(&watch_mu_, tick.count());
      if (stop_watchdog_) return;
    }
    MaybeSignCheckpoint();
    MutexLock lock(&watch_mu_);
    const uint64_t head = spool_->durable_size_lock_free();
    const int64_t now = clock_->MonotonicNanos();
    for (Watched& w : senders_) {
      const transport::SenderStats st = w.sender->stats();
      const int64_t since = std::max(st.last_progress_mono_ns, w.last_restart_ns);
      if (head <= st.acked_next || now - since < stall_ns) continue;
      ++w.restarts;
      w.last_restart_ns = now;
      LogError("watchdog: destination " + w.options.name + " has acknowledged nothing for " +
               std::to_string((now - st.last_progress_mono_ns) / 1'000'000'000) +
               " s while the spool head is at " + std::to_string(head) + " and its acked seq at " +
               std::to_string(st.acked_next) + "; restarting its sender");
      w.sender->Restart();  // posts to the sender's thread; never waits for it
    }
  }
}

AgentObservation Agent::Observe() const {
  AgentObservation o;
  o.mono_ns = clock_->MonotonicNanos();
  o.spool_dir = env::JoinPath(cfg_.data_dir, "spool");
  o.full_policy = std::string(spool::FullPolicyName(cfg_.spool.full_policy));
  o.spool_bytes = spool_->bytes_used_lock_free();
  o.spool_quota = spool_->quota_bytes();
  o.dropped_records = spool_->dropped_records_lock_free();
  o.durable = spool_->durable_size_lock_free();
  const ingest::Stats is = ingest_->stats();
  o.refused_full = is.refused_full;
  o.inputs_waiting = is.waiting_for_room;
  if (Status e = spool_->sticky_error(); !e.ok()) o.spool_error = e.message();
  MutexLock lock(&watch_mu_);
  for (const Watched& w : senders_) {
    const transport::SenderStats st = w.sender->stats();
    o.destinations.push_back({w.options.name, w.options.address, w.options.required, st.connected,
                              st.connect_failures, st.acked_next});
  }
  return o;
}

void Agent::HealSpool(SpoolHealing* h) {
  const Status e = spool_->sticky_error();
  const int64_t now = clock_->MonotonicNanos();
  const auto healed_now = [&] {
    if (h->failing_since_ns != 0) {
      LogInfo("spool healed after " + std::to_string((now - h->failing_since_ns) / 1'000'000'000) +
              " s and " + std::to_string(h->attempts) + " attempts: the spool writes again");
    }
    *h = SpoolHealing{};
  };
  if (e.ok()) return healed_now();
  if (h->failing_since_ns == 0) {
    h->failing_since_ns = now;
    LogError("spool write failed: " + e.ToString() +
             "; inputs wait (nothing is dropped) while the spool is healed every " +
             std::to_string(kHealMaxBackoffMs / 1000) + " s at most");
  }
  if (now < h->next_attempt_ns) return;
  ++h->attempts;
  const Status healed = ingest_->Heal();
  if (healed.ok() && spool_->sticky_error().ok()) return healed_now();
  h->next_attempt_ns = now + h->backoff_ms * 1'000'000;
  h->backoff_ms = std::min<int64_t>(h->backoff_ms * 2, kHealMaxBackoffMs);
  if (healed.message() != h->last_error) {
    h->last_error = healed.message();
    LogWarning("spool heal failed, retrying: " + healed.ToString());
  }
}

void Agent::AlertLoop() {
  SpoolHealing healing;
  for (;;) {
    HealSpool(&healing);
    alert_rules_->Observe(Observe());
    disk_watch_->Observe(clock_->MonotonicNanos());
    MutexLock lock(&alert_mu_);
    if (!stop_alerts_) alert_cv_.WaitFor(&alert_mu_, 1000);
    if (stop_alerts_) return;
  }
}

std::vector<DestinationStatus> Agent::Destinations() const {
  MutexLock lock(&watch_mu_);
  std::vector<DestinationStatus> out;
  for (const Watched& w : senders_) {
    out.push_back({w.options.name, w.options.required, w.sender->stats(), w.restarts});
  }
  return out;
}

Agent::~Agent() { Stop(); }

Status Agent::StartInput(const config::InputConfig& in) {
  input::Context ctx{&running_->io, ingest_.get(), clock_, env::JoinPath(cfg_.data_dir, "state")};
  std::unique_ptr<input::Input> input;
  switch (in.type) {
    case config::InputType::kSyslogTcp:
      input = input::NewSyslogTcpInput(ctx, in.syslog);
      break;
    case config::InputType::kSyslogUdp:
      input = input::NewSyslogUdpInput(ctx, in.syslog);
      break;
    case config::InputType::kRelp:
      input = input::NewRelpInput(ctx, in.syslog);
      break;
    case config::InputType::kHttp:
      input = input::NewHttpInput(ctx, in.http);
      break;
    case config::InputType::kFile:
      input = input::NewFileInput(ctx, in.file);
      break;
    case config::InputType::kJournald:
      input = input::NewJournaldInput(ctx, in.journald);
      break;
  }
  if (Status s = input->Start(); !s.ok()) {
    return Status(s.code(), "input at config line " + std::to_string(in.line) + ": " + s.message());
  }
  if (in.type != config::InputType::kFile && in.type != config::InputType::kJournald) {
    LogInfo("input " + input->name() + " listening on port " + std::to_string(input->port()));
  }
  running_->configs.push_back(in);
  running_->inputs.push_back(std::move(input));
  return Status::Ok();
}

void Agent::OnInputThread(const std::function<void()>& fn) const {
  std::promise<void> done;
  asio::post(running_->io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

Status Agent::Reload(const config::AgentConfig& cfg) {
  std::string problems;
  if (cfg.data_dir != cfg_.data_dir || cfg.id != cfg_.id ||
      cfg.spool.quota_bytes != cfg_.spool.quota_bytes ||
      cfg.spool.segment_bytes != cfg_.spool.segment_bytes ||
      cfg.spool.full_policy != cfg_.spool.full_policy ||
      cfg.spool.max_record_bytes != cfg_.spool.max_record_bytes ||
      cfg.commit_delay_ms != cfg_.commit_delay_ms) {
    problems += "[agent] and [spool] changes take effect only after a restart; ";
  }
  OnInputThread([&] {
    // Stop what is gone or changed; keep what is identical.
    std::vector<bool> keep(cfg.inputs.size(), false);
    for (size_t i = 0; i < running_->configs.size();) {
      const auto same = std::find_if(cfg.inputs.begin(), cfg.inputs.end(), [&](const auto& c) {
        return c.type == running_->configs[i].type && c.syslog == running_->configs[i].syslog &&
               c.file == running_->configs[i].file;
      });
      if (same != cfg.inputs.end() && !keep[same - cfg.inputs.begin()]) {
        keep[same - cfg.inputs.begin()] = true;
        ++i;
        continue;
      }
      LogInfo("reload: stopping input " + running_->inputs[i]->name());
      running_->inputs[i]->Stop();
      running_->inputs.erase(running_->inputs.begin() + static_cast<ptrdiff_t>(i));
      running_->configs.erase(running_->configs.begin() + static_cast<ptrdiff_t>(i));
    }
    for (size_t i = 0; i < cfg.inputs.size(); ++i) {
      if (keep[i]) continue;
      if (Status s = StartInput(cfg.inputs[i]); !s.ok()) problems += s.message() + "; ";
    }
  });
  cfg_.inputs = cfg.inputs;
  ReloadDestinations(cfg.destinations, &problems);
  if (problems.empty()) return Status::Ok();
  problems.resize(problems.size() - 2);
  return FailedPreconditionError("reload: " + problems);
}

void Agent::ReloadDestinations(const std::vector<transport::DestinationOptions>& next,
                               std::string* problems) {
  std::vector<std::shared_ptr<transport::Sender>> stopping;
  std::vector<std::shared_ptr<transport::Heartbeater>> stopping_heartbeats;
  std::vector<transport::DestinationOptions> starting, reconfigured;
  {
    MutexLock lock(&watch_mu_);
    for (auto it = senders_.begin(); it != senders_.end();) {
      auto same = std::find_if(next.begin(), next.end(),
                               [&](const auto& d) { return d.name == it->options.name; });
      if (same == next.end()) {
        LogWarning("reload: destination " + it->options.name + " removed");
        stopping.push_back(std::move(it->sender));
        if (it->heartbeat) stopping_heartbeats.push_back(std::move(it->heartbeat));
        it = senders_.erase(it);
        continue;
      }
      if (!(*same == it->options)) {
        LogInfo("reload: destination " + same->name + " → " + same->address +
                ": reconnecting; unacknowledged records are sent again");
        it->sender->Reconfigure(*same);
        it->options = *same;
        if (it->heartbeat) stopping_heartbeats.push_back(std::move(it->heartbeat));
        reconfigured.push_back(*same);
      }
      ++it;
    }
    for (const auto& d : next) {
      const bool known = std::any_of(senders_.begin(), senders_.end(),
                                     [&](const Watched& w) { return w.options.name == d.name; });
      if (!known) starting.push_back(d);
    }
  }
  for (auto& s : stopping) s->Stop();  // outside the watchdog's lock: Stop joins a thread
  for (auto& h : stopping_heartbeats) h->Stop();
  for (const auto& d : reconfigured) {  // the heartbeat follows its destination
    auto h = StartHeartbeat(d);
    if (!h.ok()) {
      *problems += h.status().message() + "; ";
      continue;
    }
    MutexLock lock(&watch_mu_);
    for (Watched& w : senders_) {
      if (w.options.name == d.name) w.heartbeat = *h;
    }
  }
  ForgetRemovedDestinations(next);
  if (!starting.empty() && identity_.key == nullptr) {
    *problems +=
        "destinations added to an agent started without any need a restart (the key "
        "is loaded at start); ";
    return;
  }
  for (const auto& d : starting) {
    if (Status s = StartSender(d); !s.ok()) *problems += s.message() + "; ";
  }
  cfg_.destinations = next;
}

void Agent::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (metrics_) metrics_->Stop();  // first: its handlers read everything below
  if (alert_thread_.joinable()) {
    {
      MutexLock lock(&alert_mu_);
      stop_alerts_ = true;
    }
    alert_cv_.SignalAll();
    alert_thread_.join();
  }
  if (watchdog_.joinable()) {
    {
      MutexLock lock(&watch_mu_);
      stop_watchdog_ = true;
    }
    watch_cv_.SignalAll();
    watchdog_.join();
  }
  if (running_) {
    auto stop_inputs = [r = running_.get()] {
      for (auto& input : r->inputs) input->Stop();
    };
    if (input_thread_.joinable()) {
      OnInputThread(stop_inputs);
      running_->work.reset();
      running_->io.stop();
      input_thread_.join();
    } else {
      stop_inputs();
    }
    running_->inputs.clear();  // after the io_context stopped: no handler can run
  }
  if (ingest_) ingest_->Stop();
  std::vector<Watched> senders;
  {
    MutexLock lock(&watch_mu_);
    senders.swap(senders_);
  }
  // Everything appended is durable now: its signed tree goes out with one last heartbeat
  // per destination (at most a second each), so the collector can check the whole run.
  MaybeSignCheckpoint(/*force=*/true);
  for (Watched& w : senders) {
    if (w.heartbeat) w.heartbeat->Stop(/*last_beat_ms=*/1000);
    w.sender->Stop();
  }
  senders.clear();
  if (spool_) {
    if (Status s = spool_->Close(); !s.ok()) LogError("closing the spool: " + s.ToString());
  }
  if (alerts_) alerts_->Stop();  // what is undelivered stays in the journal for the next run
}

std::vector<InputStatus> Agent::Inputs() const {
  std::vector<InputStatus> out;
  if (!running_ || stopped_) return out;
  OnInputThread([&] {
    for (const auto& input : running_->inputs) {
      out.push_back(InputStatus{input->name(), input->port(), input->stats()});
    }
  });
  return out;
}

}  // namespace gapless::agent
