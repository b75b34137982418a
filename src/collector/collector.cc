#include "collector/collector.h"

#include <charconv>

#include "base/address.h"
#include "base/log.h"
#include "collector/collector_impl.h"

namespace gapless::collector {

std::string StreamDir(const std::string& data_dir, const std::string& agent_id,
                      const spool::Epoch& epoch) {
  return store::Layout(data_dir).StreamDir(agent_id, store::EpochHex(epoch));
}

StatusOr<Stream*> Collector::Impl::OpenStream(const wire::Hello& h) {
  const std::string epoch_hex = store::EpochHex(h.epoch);
  const std::string key = h.agent_id + "/" + epoch_hex;
  auto it = streams.find(key);
  if (it != streams.end()) {
    it->second->attaches++;
    it->second->last_used_ns = env->clock()->MonotonicNanos();
    return it->second.get();
  }
  const std::string dir = StreamDir(options.data_dir, h.agent_id, h.epoch);
  if (!env->FileExists(dir) && !NewEpochAllowed(h.agent_id, epoch_hex)) {
    return Status(StatusCode::kResourceExhausted,
                  "agent " + h.agent_id + " started more than " +
                      std::to_string(options.max_new_epochs_per_agent) + " new epochs within " +
                      std::to_string(options.new_epoch_window_s) +
                      " s; refused until the window passes (max_new_epochs_per_agent)");
  }
  // Past the bound, each new stream has an idle one closed for it (which takes one trip to
  // the committer: the bound is exceeded only by the closes in flight).
  int open_not_closing = 0;
  for (const auto& [k, s] : streams) open_not_closing += s->closing ? 0 : 1;
  if (open_not_closing >= options.max_open_streams && !CloseAnIdleStream()) {
    return Status(StatusCode::kResourceExhausted,
                  "the collector holds " + std::to_string(open_not_closing) +
                      " streams open, each with a live connection (max_open_streams)");
  }
  store::OpenReport report;
  auto opened = store::StreamStore::Open(env, dir, h.epoch, options.store, &report);
  if (!opened.ok()) {  // a full disk, say: refused, and /health says so until one opens
    NoteStoreFailing(key, "cannot open the store: " + opened.status().message());
    return opened.status();
  }
  NoteStoreFailing(key, "");
  auto st = std::move(*opened);
  if (report.torn_bytes_truncated > 0 || report.damaged_bytes > 0) {
    LogWarning("collector: stream " + key + " recovered: " + std::to_string(report.records) +
               " records, torn tail " + std::to_string(report.torn_bytes_truncated) +
               " bytes cut, " + std::to_string(report.damaged_bytes) + " damaged bytes");
  }
  auto stream = std::make_unique<Stream>();
  stream->store = std::move(st);
  stream->agent_id = h.agent_id;
  stream->epoch_hex = store::EpochHex(h.epoch);
  stream->origin = checkpoint::CollectorOrigin(options.name, h.agent_id, stream->epoch_hex);
  stream->attaches = 1;
  stream->last_used_ns = env->clock()->MonotonicNanos();
  Stream* raw = stream.get();
  streams.emplace(key, std::move(stream));
  open_streams = streams.size();
  return raw;
}

bool Collector::Impl::NewEpochAllowed(const std::string& agent_id, const std::string& epoch_hex) {
  const int64_t now = env->clock()->MonotonicNanos();
  const int64_t window = options.new_epoch_window_s * 1'000'000'000;
  std::deque<int64_t>& times = new_epochs[agent_id];
  while (!times.empty() && now - times.front() >= window) times.pop_front();
  if (static_cast<int64_t>(times.size()) >= options.max_new_epochs_per_agent) {
    epochs_refused++;
    if (options.alerts != nullptr) {
      options.alerts->Fire(
          "epoch_storm", agent_id, "critical",
          "agent " + agent_id + " started " + std::to_string(times.size()) + " new epochs within " +
              std::to_string(options.new_epoch_window_s) +
              " s and is refused more: its spool is being replaced again and again (lost "
              "evidence each time) or its key is used to exhaust the collector",
          {{"refused_epoch", epoch_hex},
           {"max_new_epochs_per_agent", std::to_string(options.max_new_epochs_per_agent)}});
    }
    return false;
  }
  if (times.empty() && options.alerts != nullptr) {
    options.alerts->Resolve("epoch_storm", agent_id, "new epochs are within the limit again");
  }
  times.push_back(now);
  return true;
}

void Collector::Impl::CloseRequested(const std::vector<Stream*>& closing) {
  const int64_t now = env->clock()->MonotonicNanos();
  for (Stream* s : closing) {
    bool keep = false;
    if (Status st = s->store->Commit(); !st.ok()) {  // logged by the store
      StoreFailed(s, st);
      keep = true;
    }
    if (!keep && !SignStream(s, now)) keep = true;
    if (!keep) {
      unsigned_streams.erase(s);
      if (waiting_agent_checkpoints.erase(s) > 0) {
        LogInfo("collector: " + s->origin +
                " closed while idle; the agent's checkpoint is compared when it sends it again");
      }
    }
    asio::post(io, [this, s, keep] { FinishClose(s, keep); });
  }
}

void Collector::Impl::FinishClose(Stream* s, bool keep) {
  s->closing = false;
  if (keep || s->broken || s->attaches != s->close_attaches) return;  // stays open
  streams.erase(s->agent_id + "/" + s->epoch_hex);                    // the store closes its files
  open_streams = streams.size();
  streams_closed++;
}

void Collector::Impl::CommitterLoop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(options.checkpoint_interval_ms);
  for (;;) {
    std::set<Stream*> work;
    std::vector<Stream*> closing;
    bool stop = false;
    {
      MutexLock lock(&dirty_mu);
      // Wait for work; with streams still to sign, at most one checkpoint interval; with
      // stores to reopen, a quarter second.
      const bool reopening = std::any_of(store_heals.begin(), store_heals.end(),
                                         [](const auto& h) { return !h.second.reopened; });
      const auto deadline = Clock::now() + (reopening ? std::chrono::milliseconds(250) : interval);
      while (!stop_committer && dirty.empty() && agent_checkpoints.empty() &&
             close_requests.empty()) {
        if (unsigned_streams.empty() && !reopening) {
          dirty_cv.Wait(&dirty_mu);
          continue;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        dirty_cv.WaitFor(&dirty_mu, left);
      }
      work.swap(dirty);
      closing.swap(close_requests);
      waiting_agent_checkpoints.insert(agent_checkpoints.begin(), agent_checkpoints.end());
      agent_checkpoints.clear();
      for (Stream* s : heal_ready) store_heals[s].ready = true;
      heal_ready.clear();
      stop = stop_committer;
    }
    for (Stream* s : work) {
      if (Status st = s->store->Commit(); !st.ok()) {  // logged by the store
        StoreFailed(s, st);
        continue;
      }
      if (auto h = store_heals.find(s); h != store_heals.end()) StoreHealed(h);
      asio::post(io, [this, s] { SendAcks(s); });
      unsigned_streams.insert(s);
      if (options.monitors != nullptr) {
        options.monitors->OnStored(s->agent_id, s->epoch_hex, s->store->durable_next());
      }
    }
    SignCheckpoints(/*all=*/stop && work.empty());
    CompareAgentCheckpoints(&waiting_agent_checkpoints);
    CloseRequested(closing);
    if (!stop) HealStores();
    if (stop && work.empty()) return;
  }
}

void Collector::Impl::NoteStoreFailing(const std::string& key, const std::string& error) {
  MutexLock lock(&failing_mu);
  if (error.empty()) {
    failing_stores.erase(key);
  } else {
    failing_stores[key] = error;
  }
}

void Collector::Impl::StoreFailed(Stream* s, const Status& st) {
  const int64_t now = env->clock()->MonotonicNanos();
  unsigned_streams.erase(s);  // nothing is signed from a failed store
  auto known = store_heals.find(s);
  if (known != store_heals.end()) {
    StoreHeal& h = known->second;
    if (!h.reopened) return;  // a later commit of the same failed store
    // Reopened, and the first commit failed again (the disk is still full): back off.
    h.reopened = false;
    h.ready = false;
    h.next_ns = now + h.backoff_ms * 1'000'000;
    h.backoff_ms = std::min(h.backoff_ms * 2, kStoreHealMaxBackoffMs);
    NoteStoreFailing(s->agent_id + "/" + s->epoch_hex, st.message());
    asio::post(io, [this, s, error = st.message()] { OnStoreBroken(s, error); });
    return;
  }
  StoreHeal& h = store_heals[s];
  h.since_ns = h.next_ns = now;
  const std::string key = s->agent_id + "/" + s->epoch_hex;
  NoteStoreFailing(key, st.message());
  if (options.alerts != nullptr) {
    options.alerts->Fire("store_write_failed", key, "critical",
                         "the collector cannot write the store of " + key +
                             ": nothing more of it is acknowledged (the agent keeps it) until the "
                             "store is reopened, which the collector retries every few seconds: " +
                             st.message(),
                         {{"store", s->store->dir()}, {"error", st.message()}});
  }
  asio::post(io, [this, s, error = st.message()] { OnStoreBroken(s, error); });
}

void Collector::Impl::HealStores() {
  const int64_t now = env->clock()->MonotonicNanos();
  for (auto it = store_heals.begin(); it != store_heals.end();) {
    Stream* s = it->first;
    StoreHeal& h = it->second;
    if (h.reopened || !h.ready || now < h.next_ns) {
      ++it;
      continue;
    }
    ++h.attempts;
    const std::string key = s->agent_id + "/" + s->epoch_hex;
    store::OpenReport report;
    Status st = s->store->DiscardUnsynced();
    StatusOr<std::unique_ptr<store::StreamStore>> fresh =
        st.ok() ? store::StreamStore::Open(env, s->store->dir(), s->store->epoch(), options.store,
                                           &report)
                : StatusOr<std::unique_ptr<store::StreamStore>>(st);
    if (!fresh.ok()) {
      h.next_ns = now + h.backoff_ms * 1'000'000;
      h.backoff_ms = std::min(h.backoff_ms * 2, kStoreHealMaxBackoffMs);
      if (fresh.status().message() != h.error) {
        h.error = fresh.status().message();
        LogWarning("collector: cannot reopen the store of " + key +
                   " yet (retrying): " + fresh.status().ToString());
      }
      ++it;
      continue;
    }
    // The network thread does not touch the store while the stream is broken. The stream
    // takes batches again; it counts as healed at its first successful commit.
    s->store = std::move(*fresh);
    h.reopened = true;
    asio::post(io, [s] { s->broken = false; });
    ++it;
  }
}

void Collector::Impl::StoreHealed(std::map<Stream*, StoreHeal>::iterator it) {
  Stream* s = it->first;
  const StoreHeal& h = it->second;
  const std::string key = s->agent_id + "/" + s->epoch_hex;
  LogInfo("collector: the store of " + key + " writes again after " +
          std::to_string((env->clock()->MonotonicNanos() - h.since_ns) / 1'000'000'000) +
          " s (reopened " + std::to_string(h.attempts) + " times); it holds " +
          std::to_string(s->store->durable_next()) + " records");
  NoteStoreFailing(key, "");
  if (options.alerts != nullptr) {
    options.alerts->Resolve("store_write_failed", key, "the store writes again");
  }
  store_heals.erase(it);
}

// Committer thread. Signs a checkpoint of each stream that grew, once its last one is
// checkpoint_interval_ms old (or of all of them at the end).
void Collector::Impl::SignCheckpoints(bool all) {
  const int64_t now = env->clock()->MonotonicNanos();
  for (auto it = unsigned_streams.begin(); it != unsigned_streams.end();) {
    Stream* s = *it;
    if (!all && now - s->signed_at_ns < options.checkpoint_interval_ms * 1'000'000) {
      ++it;
      continue;
    }
    it = unsigned_streams.erase(it);
    if (!SignStream(s, now)) unsigned_streams.insert(s);  // tried again at the next round
  }
}

bool Collector::Impl::SignStream(Stream* s, int64_t now) {
  if (s->store->failed()) return true;  // signed again once healed (HealStores)
  const uint64_t size = s->store->committed_size();
  if (size == s->signed_size) return true;
  auto note = SignAndAppend(s->store.get(), s->origin);
  if (!note.ok()) {
    LogError("collector: cannot write the checkpoint of " + s->origin + ": " +
             note.status().ToString());
    return false;
  }
  s->signed_size = size;
  s->signed_at_ns = now;
  if (witnessing) witnessing->Offer(s->store->dir(), *note);
  if (outputs) outputs->Signed(s->agent_id, s->epoch_hex, s->store->dir(), size);
  return true;
}

// A checkpoint of the store as committed, signed and appended to the store.
StatusOr<std::string> Collector::Impl::SignAndAppend(store::StreamStore* store,
                                                     const std::string& origin) {
  checkpoint::Checkpoint c;
  c.origin = origin;
  c.size = store->committed_size();
  c.root = store->committed_root();
  ASSIGN_OR_RETURN(std::string note,
                   checkpoint::SignNote(checkpoint::FormatCheckpoint(c), key_name, *signing_key));
  RETURN_IF_ERROR(store->AppendCheckpoint(note));
  return note;
}

// At start, before any agent is heard: every stream whose stored records go beyond its
// newest signed checkpoint — a crash between a commit and its signing, or an agent that
// never came back to grow the stream — gets signed now, so that nothing stored stays
// unprovable. Each such store is opened, signed and closed again (not kept open).
void Collector::Impl::SignWhatWasLeftUnsigned() {
  auto stored = store::Layout(options.data_dir).ListStreams(env);
  if (!stored.ok()) return;  // no streams yet
  for (const store::StreamRef& ref : *stored) {
    auto signed_size = output::LastSignedSize(env, ref.dir);
    spool::Epoch epoch{};
    bool hex_ok = ref.epoch.size() == 2 * epoch.size();
    for (size_t i = 0; hex_ok && i < epoch.size(); ++i) {
      auto [end, err] =
          std::from_chars(ref.epoch.data() + 2 * i, ref.epoch.data() + 2 * i + 2, epoch[i], 16);
      hex_ok = err == std::errc() && end == ref.epoch.data() + 2 * i + 2;
    }
    if (!signed_size.ok() || !hex_ok) {
      LogError("collector: cannot tell what is signed in " + ref.dir + ": " +
               (signed_size.ok() ? "bad epoch" : signed_size.status().ToString()));
      continue;
    }
    auto store = store::StreamStore::Open(env, ref.dir, epoch, options.store);
    if (!store.ok()) {
      LogError("collector: cannot open " + ref.dir + " to sign it: " + store.status().ToString());
      continue;
    }
    const uint64_t size = (*store)->committed_size();
    if (size <= *signed_size) continue;
    const std::string origin = checkpoint::CollectorOrigin(options.name, ref.agent, ref.epoch);
    auto note = SignAndAppend(store->get(), origin);
    if (!note.ok()) {
      LogError("collector: cannot sign " + origin + ": " + note.status().ToString());
      continue;
    }
    LogInfo("collector: signed " + origin + " at size " + std::to_string(size) + ": " +
            std::to_string(size - *signed_size) + " records were stored but not yet signed");
    if (witnessing) witnessing->Offer(ref.dir, *note);
  }
}

Collector::~Collector() { Stop(); }

std::string CheckpointKeyName(const std::string& collector_name) {
  return "gapless/collector/" + collector_name;
}

namespace {

// The configured key, or data_dir/collector.key (made on first start, with its
// verifier key beside it for operators and auditors).
StatusOr<std::unique_ptr<identity::SigningKey>> LoadOrMakeSigningKey(const CollectorOptions& o) {
  if (!o.signing_key.empty()) {
    auto key = identity::SigningKey::Load(o.signing_key);
    if (!key.ok()) {
      return Status(key.status().code(), "collector: signing_key: " + key.status().message());
    }
    return key;
  }
  const store::Layout layout(o.data_dir);
  const std::string path = layout.CollectorKey();
  if (!env::Env::Posix()->FileExists(path)) {
    ASSIGN_OR_RETURN(auto key, identity::SigningKey::Generate());
    RETURN_IF_ERROR(key->Save(path));
    RETURN_IF_ERROR(env::WriteFileAtomically(
        env::Env::Posix(), layout.CollectorVerifierKey(),
        checkpoint::FormatVerifierKey(CheckpointKeyName(o.name), key->public_key()) + "\n"));
    LogInfo("collector: made the checkpoint signing key " + path);
  }
  auto key = identity::SigningKey::Load(path);
  if (!key.ok()) return Status(key.status().code(), "collector: " + key.status().message());
  return key;
}

}  // namespace

StatusOr<std::unique_ptr<Collector>> Collector::Start(env::Env* env, const CollectorOptions& o) {
  if (o.data_dir.empty()) return InvalidArgumentError("collector: data_dir is required");
  if (o.tls_cert.empty() || o.tls_key.empty()) {
    return InvalidArgumentError("collector: tls cert and key are required (TLS is always on)");
  }
  if (o.enrolled_keys.empty()) {
    return InvalidArgumentError("collector: enrolled_keys (the agents' public keys) is required");
  }
  auto tls_key = identity::ReadSecretFile(o.tls_key);
  if (!tls_key.ok()) {
    return Status(tls_key.status().code(), "collector: tls key: " + tls_key.status().message());
  }
  std::unique_ptr<Collector> c(new Collector());
  c->impl_ = std::make_unique<Impl>();
  Impl* impl = c->impl_.get();
  impl->env = env;
  impl->options = o;
  const store::Layout layout(o.data_dir);
  RETURN_IF_ERROR(layout.EnsureFormat(env));
  RETURN_IF_ERROR(env->CreateDir(layout.StreamsDir()));
  RETURN_IF_ERROR(impl->ReloadEnrolled());
  impl->key_name = CheckpointKeyName(o.name);
  if (!checkpoint::ValidKeyName(impl->key_name)) {
    return InvalidArgumentError("collector: name \"" + o.name +
                                "\" cannot name a signing key (no spaces or '+')");
  }
  ASSIGN_OR_RETURN(impl->signing_key, LoadOrMakeSigningKey(o));
  c->verifier_key_ = checkpoint::FormatVerifierKey(impl->key_name, impl->signing_key->public_key());
  LogInfo("collector: checkpoints are signed by " + c->verifier_key_);

  impl->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(impl->tls->native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  impl->tls->use_certificate_chain_file(o.tls_cert, ec);
  if (ec)
    return InvalidArgumentError("collector: cannot load tls cert " + o.tls_cert + ": " +
                                ec.message());
  impl->tls->use_private_key(boost::asio::buffer(*tls_key), ssl::context::pem, ec);
  OPENSSL_cleanse(tls_key->data(), tls_key->size());
  if (ec)
    return InvalidArgumentError("collector: cannot load tls key " + o.tls_key + ": " +
                                ec.message());

  for (const std::string& listen : o.listen) {
    std::string address;
    uint16_t port = 0;
    RETURN_IF_ERROR(ParseListenAddress(listen, &address, &port));
    auto a = std::make_unique<tcp::acceptor>(impl->io);
    const tcp::endpoint ep(asio::ip::make_address(address, ec), port);
    if (!ec) a->open(ep.protocol(), ec);
    if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return UnavailableError("collector: cannot listen on " + listen + ": " + ec.message());
    c->ports_.push_back(a->local_endpoint().port());
    impl->acceptors.push_back(std::move(a));
  }
  for (auto& a : impl->acceptors) impl->Accept(a.get());
  if (!o.witnesses.empty()) {
    ASSIGN_OR_RETURN(impl->witnessing,
                     Witnessing::Start(env, o.witnesses, o.witness_retry_ms, o.alerts));
  }
  if (!o.archive.dir.empty()) {
    ASSIGN_OR_RETURN(impl->archiving, Archiving::Start(o.data_dir, o.signing_key, c->verifier_key_,
                                                       o.archive, o.alerts));
  }
  impl->SignWhatWasLeftUnsigned();  // before the outputs start: they deliver what is signed
  if (!o.outputs.empty()) {
    ASSIGN_OR_RETURN(impl->outputs, output::Outputs::Start(env, o.data_dir, o.outputs, o.alerts));
  }
  impl->work_guard.emplace(impl->io.get_executor());
  impl->io_thread = std::thread([impl] { impl->io.run(); });
  impl->committer = std::thread([impl] { impl->CommitterLoop(); });
  return c;
}

void Collector::Stop() {
  // A Start that failed part way has no threads to stop (and joining them would throw).
  if (impl_ == nullptr || impl_->stopped || !impl_->io_thread.joinable()) return;
  impl_->stopped = true;
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    for (auto& a : impl->acceptors) {
      boost::system::error_code ignored;
      a->close(ignored);
    }
    impl->CloseConnections();
    impl->work_guard.reset();
  });
  impl->io_thread.join();
  {
    MutexLock lock(&impl->dirty_mu);
    impl->stop_committer = true;
  }
  impl->dirty_cv.Signal();
  impl->committer.join();
  if (impl->witnessing) impl->witnessing->Stop();  // one last try for the final checkpoints
  if (impl->archiving) impl->archiving->Stop();    // one last round, final checkpoints included
  if (impl->outputs) impl->outputs->Stop();        // cursors saved; the rest goes after a restart
}

CollectorStats Collector::stats() const {
  CollectorStats s;
  const Counters& c = impl_->counters;
  s.connections = c.connections.load();
  s.connections_refused = c.connections_refused.load();
  s.authenticated = c.authenticated.load();
  s.batches = c.batches.load();
  s.records = c.records.load();
  s.duplicates = c.duplicates.load();
  s.equivocations = c.equivocations.load();
  s.enrolled = c.enrolled.load();
  s.enrolled_keys_reads = c.enrolled_keys_reads.load();
  s.open_streams = impl_->open_streams.load();
  s.streams_closed = impl_->streams_closed.load();
  s.epochs_refused = impl_->epochs_refused.load();
  s.heartbeats = c.heartbeats.load();
  s.agent_checkpoints_verified = c.agent_checkpoints_verified.load();
  s.agent_checkpoints_invalid = c.agent_checkpoints_invalid.load();
  for (size_t i = 0; i < s.rejected.size(); ++i) s.rejected[i] = c.rejected[i].load();
  if (impl_->witnessing) s.witnessing = impl_->witnessing->stats();
  if (impl_->archiving) s.archiving = impl_->archiving->stats();
  if (impl_->outputs) s.outputs = impl_->outputs->stats();
  {
    MutexLock lock(&impl_->failing_mu);
    s.failing_stores.assign(impl_->failing_stores.begin(), impl_->failing_stores.end());
  }
  return s;
}

}  // namespace gapless::collector
