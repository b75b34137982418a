#include "collector/collector.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "base/address.h"
#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "event/event.h"
#include "identity/identity.h"
#include "merkle/proof.h"
#include "spool/loss_record.h"
#include "store/hash_levels.h"
#include "store/layout.h"

namespace gapless::collector {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

std::string StreamDir(const std::string& data_dir, const std::string& agent_id,
                      const spool::Epoch& epoch) {
  return store::Layout(data_dir).StreamDir(agent_id, store::EpochHex(epoch));
}

namespace {

using TlsStream = ssl::stream<tcp::socket>;

// What the agent is told when a batch is refused: the one table from the decoder's faults
// and the store's outcomes to the wire's error codes (docs/protocol.md).
wire::ErrorCode RefusalCode(wire::BatchFault fault) {
  switch (fault) {
    case wire::BatchFault::kChecksumMismatch:
      return wire::ErrorCode::kChecksumMismatch;
    case wire::BatchFault::kDigestMismatch:
      return wire::ErrorCode::kLeafMismatch;
    case wire::BatchFault::kNone:
    case wire::BatchFault::kMalformed:
      break;
  }
  return wire::ErrorCode::kMalformed;
}
wire::ErrorCode RefusalCode(store::AppendOutcome::Kind kind) {
  switch (kind) {
    case store::AppendOutcome::Kind::kSequenceGap:
      return wire::ErrorCode::kSequenceGap;
    case store::AppendOutcome::Kind::kImplausibleGap:
      return wire::ErrorCode::kMalformed;
    case store::AppendOutcome::Kind::kAppended:
    case store::AppendOutcome::Kind::kStoreFailed:
      break;
  }
  return wire::ErrorCode::kStoreFailure;
}

struct Counters {
  std::atomic<uint64_t> connections{0}, authenticated{0}, batches{0}, records{0}, duplicates{0},
      equivocations{0}, enrolled{0}, heartbeats{0}, agent_checkpoints_verified{0},
      agent_checkpoints_invalid{0};
  std::array<std::atomic<uint64_t>, 16> rejected{};
};

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

class Connection;

// A stream may have several connections at once: an agent that switched endpoints has
// its old connection still delivering what it had sent. Each batch is checked against the
// store (overlap → duplicates, hole → refused), so their order does not matter.
struct Stream {
  std::unique_ptr<store::StreamStore> store;
  std::vector<std::weak_ptr<Connection>> connections;
  std::string agent_id;
  std::string epoch_hex;
  std::string origin;  // of its checkpoints; set before the committer sees the stream
  // Committer thread only.
  uint64_t signed_size = 0;
  int64_t signed_at_ns = 0;
  // The agent's latest signed checkpoint, verified, waiting to be compared with the
  // store once it holds that many records. GUARDED_BY(Impl::dirty_mu).
  std::optional<checkpoint::Checkpoint> agent_checkpoint;
  std::string agent_checkpoint_note;  // GUARDED_BY(Impl::dirty_mu)
  std::string agent_checkpoint_seen;  // network thread: the last note handed over
  bool agent_log_repaired = false;    // committer thread
};

struct Collector::Impl {
  env::Env* env = nullptr;
  CollectorOptions options;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_guard;
  std::unique_ptr<ssl::context> tls;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::weak_ptr<Connection>> connections;      // network thread
  std::map<std::string, std::unique_ptr<Stream>> streams;  // network thread
  std::map<std::string, identity::PublicKey> enrolled;     // network thread
  Counters counters;
  std::thread io_thread;
  std::thread committer;

  std::mutex dirty_mu;
  std::condition_variable dirty_cv;
  std::set<Stream*> dirty;                            // GUARDED_BY(dirty_mu)
  std::set<Stream*> agent_checkpoints;                // GUARDED_BY(dirty_mu): to compare
  std::unique_ptr<identity::SigningKey> signing_key;  // read-only after Start
  std::string key_name;
  std::set<Stream*> unsigned_streams;           // committer thread: committed, not yet checkpointed
  std::set<Stream*> waiting_agent_checkpoints;  // committer thread
  bool stop_committer = false;                  // GUARDED_BY(dirty_mu)
  bool stopped = false;
  std::unique_ptr<Witnessing> witnessing;  // null without witnesses
  std::unique_ptr<Archiving> archiving;    // null without an archive destination

  void Accept(tcp::acceptor* acceptor);
  void MarkDirty(Stream* s) {
    {
      std::lock_guard<std::mutex> lock(dirty_mu);
      dirty.insert(s);
    }
    dirty_cv.notify_one();
  }
  void CommitterLoop();
  void SignCheckpoints(bool all);
  // Network thread: checks an agent checkpoint from a heartbeat (signature by the key the
  // connection authenticated with, origin) and hands it to the committer.
  void OnAgentCheckpoint(Stream* s, const identity::PublicKey& key, const std::string& note);
  // Committer thread: compares the agent's signed roots with the store's, once the store
  // holds that many records; a match is kept in dir/agent-checkpoints.
  void CompareAgentCheckpoints(std::set<Stream*>* waiting);
  void CheckpointInvalid(const Stream* s, const std::string& why, uint64_t size = 0);
  void SendAcks(Stream* s);
  Status ReloadEnrolled();
  // Network thread. kOk, or the error code and message to reject with.
  std::pair<wire::ErrorCode, std::string> Authenticate(const wire::Hello& h,
                                                       const std::array<uint8_t, 32>& nonce);
  bool Enroll(const wire::Hello& h);
  StatusOr<Stream*> OpenStream(const wire::Hello& h);
};

// One agent connection. Lives on the network thread only.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Collector::Impl* c, TlsStream stream, std::string peer)
      : c_(c), stream_(std::move(stream)), peer_(std::move(peer)), timer_(c->io) {}

  void Start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(c_->options.handshake_timeout_ms));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->authenticated_) {
        self->Reject(wire::ErrorCode::kUnexpectedMessage, "no hello within the handshake timeout");
      }
    });
    stream_.async_handshake(ssl::stream_base::server, [self](const boost::system::error_code& ec) {
      if (ec) {
        LogWarning("collector: TLS handshake with " + self->peer_ + " failed: " + ec.message());
        self->Close();
        return;
      }
      wire::Challenge ch;
      self->c_->env->RandomBytes(self->nonce_.data(), self->nonce_.size());
      ch.nonce = self->nonce_;
      ch.collector = self->c_->options.name;
      self->Send(wire::MessageType::kChallenge, wire::EncodeChallenge(ch));
      self->ReadHeader();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

  // Sends an error frame, then closes the connection.
  void Reject(wire::ErrorCode code, const std::string& message) {
    if (closed_ || closing_) return;
    const auto index = static_cast<size_t>(code);
    if (index < c_->counters.rejected.size()) c_->counters.rejected[index]++;
    LogWarning("collector: closing " + peer_ + (agent_.empty() ? "" : " (agent " + agent_ + ")") +
               ": " + std::string(wire::ErrorCodeName(code)) + ": " + message);
    closing_ = true;
    Send(wire::MessageType::kError, wire::EncodeError({code, message}));
  }

  void SendAck(uint64_t durable_next) {
    if (!authenticated_ || closing_ || durable_next <= last_ack_) return;
    last_ack_ = durable_next;
    Send(wire::MessageType::kAck, wire::EncodeAck(durable_next));
  }

  Stream* stream() const { return stream_ptr_; }

 private:
  void Send(wire::MessageType type, std::string_view body) {
    if (closed_) return;
    std::string frame;
    wire::AppendFrame(&frame, type, body);
    out_.push_back(std::move(frame));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (out_.empty() || closed_) {
      writing_ = false;
      if (closing_ && out_.empty()) CloseAfterError();
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(stream_, asio::buffer(out_.front()),
                      [self](const boost::system::error_code& ec, size_t) {
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->out_.pop_front();
                        self->WriteNext();
                      });
  }

  // Stop sending, let the peer read the error frame, close a little later (closing at
  // once with unread input would reset the connection and could lose the frame).
  void CloseAfterError() {
    boost::system::error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::seconds(2));
    timer_.async_wait([self](const boost::system::error_code&) { self->Close(); });
  }

  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(
        stream_, asio::buffer(header_), [self](const boost::system::error_code& ec, size_t) {
          if (ec || self->closing_) {
            if (!self->closing_) self->Close();
            return;
          }
          auto h =
              wire::DecodeFrameHeader(std::string_view(self->header_.data(), self->header_.size()),
                                      self->c_->options.max_frame);
          if (!h.ok()) {
            self->Reject(h.status().code() == StatusCode::kResourceExhausted
                             ? wire::ErrorCode::kTooLarge
                             : wire::ErrorCode::kMalformed,
                         h.status().message());
            return;
          }
          self->ReadBody(*h);
        });
  }

  void ReadBody(wire::FrameHeader h) {
    body_.resize(h.body_bytes);
    auto self = shared_from_this();
    asio::async_read(stream_, asio::buffer(body_),
                     [self, h](const boost::system::error_code& ec, size_t) {
                       if (ec || self->closing_) {
                         if (!self->closing_) self->Close();
                         return;
                       }
                       self->Handle(h.type);
                       if (!self->closed_ && !self->closing_) self->ReadHeader();
                     });
  }

  void Handle(wire::MessageType type) {
    if (!authenticated_) {
      if (type != wire::MessageType::kHello) {
        Reject(wire::ErrorCode::kUnexpectedMessage, "expected a hello first");
        return;
      }
      HandleHello();
      return;
    }
    if (type == wire::MessageType::kHeartbeat) {
      HandleHeartbeat();
      return;
    }
    if (type != wire::MessageType::kBatch) {
      Reject(wire::ErrorCode::kUnexpectedMessage,
             "expected batches or heartbeats after the welcome");
      return;
    }
    HandleBatch();
  }

  // A heartbeat connection (transport/heartbeat.h) gets no acks: it is taken off the
  // stream's list at its first heartbeat.
  void HandleHeartbeat() {
    auto hb = wire::DecodeHeartbeat(body_);
    if (!hb.ok()) {
      Reject(wire::ErrorCode::kMalformed, hb.status().message());
      return;
    }
    if (!heartbeat_only_) {
      heartbeat_only_ = true;
      std::erase_if(stream_ptr_->connections, [this](const auto& w) {
        auto c = w.lock();
        return c == nullptr || c.get() == this;
      });
    }
    c_->counters.heartbeats++;
    if (!hb->checkpoint.empty()) c_->OnAgentCheckpoint(stream_ptr_, agent_key_, hb->checkpoint);
    if (c_->options.monitors != nullptr) {
      c_->options.monitors->OnHeartbeat({stream_ptr_->agent_id, stream_ptr_->epoch_hex,
                                         hb->agent_wall_ns, hb->head_seq, hb->spool_bytes,
                                         hb->spool_quota});
    }
  }

  void HandleHello() {
    auto hello = wire::DecodeHello(body_);
    if (!hello.ok()) {
      Reject(hello.status().code() == StatusCode::kFailedPrecondition
                 ? wire::ErrorCode::kUnsupportedVersion
                 : wire::ErrorCode::kMalformed,
             hello.status().message());
      return;
    }
    agent_ = identity::ValidAgentId(hello->agent_id) ? hello->agent_id : "";
    auto [code, message] = c_->Authenticate(*hello, nonce_);
    if (!message.empty()) {
      Reject(code, message);
      return;
    }
    auto stream = c_->OpenStream(*hello);
    if (!stream.ok()) {
      Reject(wire::ErrorCode::kStoreFailure, stream.status().message());
      return;
    }
    stream_ptr_ = *stream;
    agent_key_ = hello->public_key;
    std::erase_if(stream_ptr_->connections, [](const auto& w) { return w.expired(); });
    stream_ptr_->connections.push_back(weak_from_this());
    authenticated_ = true;
    timer_.cancel();
    c_->counters.authenticated++;
    wire::Welcome w;
    w.next_seq = stream_ptr_->store->next_seq();
    w.max_frame = c_->options.max_frame;
    Send(wire::MessageType::kWelcome, wire::EncodeWelcome(w));
    last_ack_ = 0;
    Send(wire::MessageType::kAck, wire::EncodeAck(stream_ptr_->store->durable_next()));
    last_ack_ = stream_ptr_->store->durable_next();
  }

  void HandleBatch() {
    wire::BatchHeader h;
    wire::BatchFault fault = wire::BatchFault::kNone;
    Status s = decoder_.Decode(body_, &h, &records_, &leaves_, &fault);
    if (!s.ok()) {
      Reject(RefusalCode(fault), s.message());
      return;
    }
    store_records_.clear();
    for (const wire::WireRecord& r : records_) {
      store_records_.push_back(store::Record{r.type, r.crc, r.payload});
    }
    const uint64_t before = stream_ptr_->store->next_seq();
    const store::BatchPosition at{h.first_seq, (h.flags & wire::kBatchGapBefore) != 0};
    const store::AppendOutcome r = stream_ptr_->store->Append(at, store_records_, leaves_);
    if (r.kind == store::AppendOutcome::Kind::kSequenceGap && c_->options.monitors != nullptr) {
      // the agent skipped seqs it still owes
      c_->options.monitors->OnGapOpened(stream_ptr_->agent_id, stream_ptr_->epoch_hex, before,
                                        h.first_seq - 1);
    }
    if (!r.ok()) {
      Reject(RefusalCode(r.kind), r.status.message());
      return;
    }
    c_->counters.batches++;
    c_->counters.records += r->appended;
    c_->counters.duplicates += r->duplicates;
    c_->counters.equivocations += r->equivocations;
    if (r->declared_gap) {
      LogWarning("collector: agent " + agent_ + " declared seqs before " +
                 std::to_string(h.first_seq) + " gone from its spool (see the LOSS records)");
    }
    if (c_->options.monitors != nullptr) Report(h, before);
    if (r->equivocations > 0 && c_->options.alerts != nullptr) {
      c_->options.alerts->Fire(
          "equivocation", stream_ptr_->agent_id + "/" + stream_ptr_->epoch_hex, "critical",
          "the agent sent other bytes for seqs already stored: both versions are kept (other "
          "bytes in evidence.seg) and the stream is flagged",
          {{"batch_first_seq", std::to_string(h.first_seq)},
           {"records_in_batch", std::to_string(h.count)},
           {"equivocations_in_batch", std::to_string(r->equivocations)}});
    }
    c_->MarkDirty(stream_ptr_);
    // Compared once the store holds every record it covers, as one from a heartbeat.
    if (!h.checkpoint.empty()) c_->OnAgentCheckpoint(stream_ptr_, agent_key_, h.checkpoint);
  }

  // The new records of the batch (not re-sent ones) go to the monitors: each DATA
  // record's source and times, each LOSS record as a declared loss.
  void Report(const wire::BatchHeader& h, uint64_t stored_before) {
    std::vector<monitor::RecordSeen> seen;
    for (size_t i = 0; i < records_.size(); ++i) {
      if (h.first_seq + i < stored_before) continue;
      if (records_[i].type == spool::FrameType::kData) {
        event::Event e;
        if (event::DecodeEvent(records_[i].payload, &e).ok()) {
          seen.push_back(
              {e.source, e.observed_unix_ns, e.has(event::kEventTime) ? e.event_unix_ns : 0});
        } else {
          seen.push_back({"(undecodable)", 0, 0});  // stored as it came; `verify` reports it
        }
        continue;
      }
      if (records_[i].type != spool::FrameType::kLoss) continue;
      auto loss = spool::LossRecord::Decode(records_[i].payload);
      if (!loss.ok()) continue;  // stored as it came; `verify` reports it
      const uint64_t first = loss->has_seq_range ? loss->first_seq : h.first_seq + i;
      const uint64_t last = loss->has_seq_range ? loss->last_seq : first;
      c_->options.monitors->OnDeclaredLoss(
          stream_ptr_->agent_id, stream_ptr_->epoch_hex, first, last,
          std::string(spool::LossReasonName(loss->reason)) +
              (loss->has_seq_range
                   ? ""
                   : " (" + std::to_string(loss->record_count) + " records, no seqs)"));
    }
    if (!seen.empty()) c_->options.monitors->OnRecords(stream_ptr_->agent_id, seen);
  }

  Collector::Impl* const c_;
  TlsStream stream_;
  const std::string peer_;
  asio::steady_timer timer_;
  std::array<uint8_t, wire::kNonceSize> nonce_{};
  std::array<char, wire::kFrameHeaderSize> header_{};
  std::string body_;
  std::deque<std::string> out_;
  bool heartbeat_only_ = false;
  identity::PublicKey agent_key_{};  // the key the hello proved
  bool writing_ = false;
  bool closed_ = false;
  bool closing_ = false;
  bool authenticated_ = false;
  std::string agent_;
  Stream* stream_ptr_ = nullptr;
  uint64_t last_ack_ = 0;
  wire::BatchDecoder decoder_;
  std::vector<store::Record> store_records_;  // views of records_, for the store
  std::vector<wire::WireRecord> records_;
  std::vector<Hash256> leaves_;
};

void Collector::Impl::Accept(tcp::acceptor* acceptor) {
  acceptor->async_accept([this, acceptor](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec != asio::error::operation_aborted) Accept(acceptor);
      return;
    }
    boost::system::error_code peer_ec;
    const auto ep = sock.remote_endpoint(peer_ec);
    const std::string peer =
        peer_ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    sock.set_option(tcp::no_delay(true), peer_ec);
    counters.connections++;
    auto c = std::make_shared<Connection>(this, TlsStream(std::move(sock), *tls), peer);
    std::erase_if(connections, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
    connections.push_back(c);
    c->Start();
    Accept(acceptor);
  });
}

Status Collector::Impl::ReloadEnrolled() {
  if (!env->FileExists(options.enrolled_keys)) {
    enrolled.clear();
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, options.enrolled_keys));
  std::vector<int> bad_lines;
  enrolled = identity::ParseEnrolledKeys(text, &bad_lines);
  for (int n : bad_lines) {
    LogError(options.enrolled_keys + ":" + std::to_string(n) +
             ": expected \"agent_id base64-public-key\" (as printed by gapless keygen); line "
             "ignored");
  }
  return Status::Ok();
}

std::pair<wire::ErrorCode, std::string> Collector::Impl::Authenticate(
    const wire::Hello& h, const std::array<uint8_t, 32>& nonce) {
  if (!identity::ValidAgentId(h.agent_id)) {
    return {wire::ErrorCode::kMalformed,
            "agent id must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'"};
  }
  if (!identity::Verify(h.public_key, wire::SignedHelloBytes(nonce, h), h.signature)) {
    return {wire::ErrorCode::kBadSignature,
            "the hello signature does not verify for this connection's challenge (a replayed or "
            "forged hello)"};
  }
  auto it = enrolled.find(h.agent_id);
  if (it == enrolled.end()) {
    if (Status s = ReloadEnrolled(); !s.ok()) LogError("collector: " + s.ToString());
    it = enrolled.find(h.agent_id);
  }
  if (it == enrolled.end()) {
    if (!h.enroll_token.empty() && Enroll(h)) return {wire::ErrorCode::kMalformed, ""};
    return {wire::ErrorCode::kUnknownAgent,
            "agent " + h.agent_id + " is not enrolled: add \"" + h.agent_id + " " +
                identity::FormatPublicKey(h.public_key) + "\" to " + options.enrolled_keys +
                " or give the agent a one-time enrollment token"};
  }
  if (it->second != h.public_key) {
    return {wire::ErrorCode::kWrongKey, "agent " + h.agent_id +
                                            " is enrolled with another key; this one is " +
                                            identity::FormatPublicKey(h.public_key)};
  }
  return {wire::ErrorCode::kMalformed, ""};
}

bool Collector::Impl::Enroll(const wire::Hello& h) {
  if (options.enroll_tokens.empty() || !env->FileExists(options.enroll_tokens)) return false;
  if (Status s = identity::CheckOwnerOnly(options.enroll_tokens); !s.ok()) {
    LogError("collector: enrollment tokens not used: " + s.message());
    return false;
  }
  auto text = env::ReadFileToString(env, options.enroll_tokens);
  if (!text.ok()) return false;
  std::istringstream in(*text);
  std::string line, rest;
  bool found = false;
  while (std::getline(in, line)) {
    if (!found && !line.empty() && ConstantTimeEqual(line, h.enroll_token)) {
      found = true;  // used up: not written back
      continue;
    }
    rest += line + "\n";
  }
  if (!found) return false;
  Status s = env::WriteFileAtomically(env, options.enroll_tokens, rest);
  if (s.ok()) {
    auto f = env->NewAppendableFile(options.enrolled_keys);
    s = f.status();
    if (s.ok()) s = (*f)->Append(h.agent_id + " " + identity::FormatPublicKey(h.public_key) + "\n");
    if (s.ok()) s = (*f)->Sync();
  }
  if (!s.ok()) {
    LogError("collector: enrolling agent " + h.agent_id + " failed: " + s.ToString());
    return false;
  }
  enrolled[h.agent_id] = h.public_key;
  counters.enrolled++;
  LogInfo("collector: enrolled agent " + h.agent_id + " with a one-time token (key " +
          identity::FormatPublicKey(h.public_key) + ")");
  return true;
}

StatusOr<Stream*> Collector::Impl::OpenStream(const wire::Hello& h) {
  const std::string key = h.agent_id + "/" + store::EpochHex(h.epoch);
  auto it = streams.find(key);
  if (it != streams.end()) return it->second.get();
  store::OpenReport report;
  ASSIGN_OR_RETURN(auto st,
                   store::StreamStore::Open(env, StreamDir(options.data_dir, h.agent_id, h.epoch),
                                            h.epoch, options.store, &report));
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
  Stream* raw = stream.get();
  streams.emplace(key, std::move(stream));
  return raw;
}

void Collector::Impl::SendAcks(Stream* s) {
  for (const auto& w : s->connections) {
    if (auto c = w.lock()) c->SendAck(s->store->durable_next());
  }
}

void Collector::Impl::CommitterLoop() {
  const auto interval = std::chrono::milliseconds(options.checkpoint_interval_ms);
  for (;;) {
    std::set<Stream*> work;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(dirty_mu);
      auto ready = [&] { return stop_committer || !dirty.empty() || !agent_checkpoints.empty(); };
      if (unsigned_streams.empty()) {
        dirty_cv.wait(lock, ready);
      } else {
        dirty_cv.wait_for(lock, interval, ready);
      }
      work.swap(dirty);
      waiting_agent_checkpoints.insert(agent_checkpoints.begin(), agent_checkpoints.end());
      agent_checkpoints.clear();
      stop = stop_committer;
    }
    for (Stream* s : work) {
      if (Status st = s->store->Commit(); !st.ok()) continue;  // logged by the store
      asio::post(io, [this, s] { SendAcks(s); });
      unsigned_streams.insert(s);
      if (options.monitors != nullptr) {
        options.monitors->OnStored(s->agent_id, s->epoch_hex, s->store->durable_next());
      }
    }
    SignCheckpoints(/*all=*/stop && work.empty());
    CompareAgentCheckpoints(&waiting_agent_checkpoints);
    if (stop && work.empty()) return;
  }
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
    const uint64_t size = s->store->committed_size();
    if (size == s->signed_size) continue;
    checkpoint::Checkpoint c;
    c.origin = s->origin;
    c.size = size;
    c.root = s->store->committed_root();
    auto note = checkpoint::SignNote(checkpoint::FormatCheckpoint(c), key_name, *signing_key);
    Status st = note.ok() ? s->store->AppendCheckpoint(*note) : note.status();
    if (!st.ok()) {
      LogError("collector: cannot write the checkpoint of " + s->origin + ": " + st.ToString());
      unsigned_streams.insert(s);  // tried again at the next round
      continue;
    }
    s->signed_size = size;
    s->signed_at_ns = now;
    if (witnessing) witnessing->Offer(s->store->dir(), *note);
  }
}

void Collector::Impl::CheckpointInvalid(const Stream* s, const std::string& why, uint64_t size) {
  counters.agent_checkpoints_invalid++;
  if (options.monitors != nullptr) {
    options.monitors->OnAgentCheckpoint(s->agent_id, s->epoch_hex, size, false, why);
  }
  LogError("collector: agent checkpoint of " + s->agent_id + "/" + s->epoch_hex + ": " + why);
  if (options.alerts != nullptr) {
    options.alerts->Fire("checkpoint_invalid", s->agent_id + "/" + s->epoch_hex, "critical", why);
  }
}

void Collector::Impl::OnAgentCheckpoint(Stream* s, const identity::PublicKey& key,
                                        const std::string& note_text) {
  if (note_text == s->agent_checkpoint_seen) return;  // heartbeats repeat the latest one
  s->agent_checkpoint_seen = note_text;
  auto note = checkpoint::ParseNote(note_text);
  auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
  if (!cp.ok()) return CheckpointInvalid(s, "malformed: " + cp.status().message());
  if (Status st = checkpoint::VerifyNote(*note, checkpoint::AgentVerifier(s->agent_id, key));
      !st.ok()) {
    return CheckpointInvalid(s, "signature: " + st.message());
  }
  if (cp->origin != checkpoint::AgentOrigin(s->agent_id, s->epoch_hex)) {
    return CheckpointInvalid(s, "signed for " + cp->origin + ", not for this stream");
  }
  {
    std::lock_guard<std::mutex> lock(dirty_mu);
    s->agent_checkpoint = *cp;
    s->agent_checkpoint_note = note_text;
    agent_checkpoints.insert(s);
  }
  dirty_cv.notify_one();
}

void Collector::Impl::CompareAgentCheckpoints(std::set<Stream*>* waiting) {
  for (auto it = waiting->begin(); it != waiting->end();) {
    Stream* s = *it;
    std::optional<checkpoint::Checkpoint> cp;
    std::string note;
    {
      std::lock_guard<std::mutex> lock(dirty_mu);
      cp = s->agent_checkpoint;
      note = s->agent_checkpoint_note;
    }
    if (!cp || cp->size > s->store->committed_size()) {  // not all stored yet: later
      ++it;
      continue;
    }
    it = waiting->erase(it);
    // A declared gap is zero leaves in the collector's tree: the roots cannot be equal.
    if (s->store->declared_gap_records() > 0) continue;
    auto source = store::StoredHashSource::Open(env, s->store->dir());
    auto root = source.ok() ? merkle::RangeRoot(**source, 0, cp->size) : source.status();
    if (!root.ok()) {
      LogError("collector: cannot compare the agent checkpoint of " + s->origin + ": " +
               root.status().ToString());
      continue;
    }
    if (*root != cp->root) {
      CheckpointInvalid(s,
                        "the agent signed another root for its first " + std::to_string(cp->size) +
                            " records than the collector stored: records were changed "
                            "between the agent's spool and the store",
                        cp->size);
      continue;
    }
    counters.agent_checkpoints_verified++;
    if (options.monitors != nullptr) {
      options.monitors->OnAgentCheckpoint(s->agent_id, s->epoch_hex, cp->size, true, "");
    }
    if (options.alerts != nullptr) {
      options.alerts->Resolve("checkpoint_invalid", s->agent_id + "/" + s->epoch_hex,
                              "the agent's signed root matches the store again");
    }
    const std::string path =
        store::StreamFiles(s->store->dir()).Notes(store::StreamFiles::NoteLog::kAgentCheckpoints);
    if (Status st = store::AppendNoteFrame(env, path, note, !s->agent_log_repaired); !st.ok()) {
      LogError("collector: cannot keep the agent checkpoint in " + path + ": " + st.ToString());
    }
    s->agent_log_repaired = true;
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
  RETURN_IF_ERROR(identity::CheckOwnerOnly(o.tls_key));
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
  impl->tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
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
    for (auto& w : impl->connections) {
      if (auto c = w.lock()) c->Close();
    }
    impl->work_guard.reset();
  });
  impl->io_thread.join();
  {
    std::lock_guard<std::mutex> lock(impl->dirty_mu);
    impl->stop_committer = true;
  }
  impl->dirty_cv.notify_one();
  impl->committer.join();
  if (impl->witnessing) impl->witnessing->Stop();  // one last try for the final checkpoints
  if (impl->archiving) impl->archiving->Stop();    // one last round, final checkpoints included
}

CollectorStats Collector::stats() const {
  CollectorStats s;
  const Counters& c = impl_->counters;
  s.connections = c.connections.load();
  s.authenticated = c.authenticated.load();
  s.batches = c.batches.load();
  s.records = c.records.load();
  s.duplicates = c.duplicates.load();
  s.equivocations = c.equivocations.load();
  s.enrolled = c.enrolled.load();
  s.heartbeats = c.heartbeats.load();
  s.agent_checkpoints_verified = c.agent_checkpoints_verified.load();
  s.agent_checkpoints_invalid = c.agent_checkpoints_invalid.load();
  for (size_t i = 0; i < s.rejected.size(); ++i) s.rejected[i] = c.rejected[i].load();
  if (impl_->witnessing) s.witnessing = impl_->witnessing->stats();
  if (impl_->archiving) s.archiving = impl_->archiving->stats();
  return s;
}

}  // namespace gapless::collector
