#include "base/log.h"
#include "collector/collector_impl.h"
#include "event/event.h"
#include "spool/loss_record.h"
#include "wire/tls_binding.h"

namespace gapless::collector {
namespace {

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

}  // namespace

// One agent connection. Lives on the network thread only.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Collector::Impl* c, TlsStream stream, std::string address, std::string peer)
      : c_(c),
        stream_(std::move(stream)),
        address_(std::move(address)),
        peer_(std::move(peer)),
        timer_(c->io) {}

  void Start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(c_->options.handshake_timeout_ms));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->authenticated_) return;
      if (!self->tls_up_) {  // an error frame would wait behind the handshake forever
        LogWarning("collector: closing " + self->peer_ +
                   ": no TLS handshake within the handshake timeout");
        self->Close();
        return;
      }
      self->Reject(wire::ErrorCode::kUnexpectedMessage, "no hello within the handshake timeout");
    });
    stream_.async_handshake(ssl::stream_base::server, [self](const boost::system::error_code& ec) {
      if (ec) {
        LogWarning("collector: TLS handshake with " + self->peer_ + " failed: " + ec.message());
        self->Close();
        return;
      }
      self->tls_up_ = true;
      wire::Challenge ch;
      self->c_->env->RandomBytes(self->nonce_.data(), self->nonce_.size());
      ch.nonce = self->nonce_;
      ch.collector = self->c_->options.name;
      self->Send(wire::MessageType::kChallenge, wire::EncodeChallenge(ch));
      self->ReadHeader();
    });
  }

  // Counted against the connection limits until closed.
  bool open() const { return !closed_; }
  const std::string& address() const { return address_; }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

  // Sends an error frame, then closes the connection.
  // Sends `message` to the peer and logs it; `log_note` is added to the log line only.
  void Reject(wire::ErrorCode code, const std::string& message, const std::string& log_note = "") {
    if (closed_ || closing_) return;
    const auto index = static_cast<size_t>(code);
    if (index < c_->counters.rejected.size()) c_->counters.rejected[index]++;
    LogWarning("collector: closing " + peer_ + (agent_.empty() ? "" : " (agent " + agent_ + ")") +
               ": " + std::string(wire::ErrorCodeName(code)) + ": " + message + log_note);
    closing_ = true;
    // Closed at the latest this long from now, even if the peer never reads the frame.
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->Close();
    });
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
          // Before authentication nothing larger than a hello is read (or allocated).
          const uint32_t limit = self->authenticated_
                                     ? self->c_->options.max_frame
                                     : std::min(self->c_->options.max_frame, wire::kMaxHelloBytes);
          auto h = wire::DecodeFrameHeader(
              std::string_view(self->header_.data(), self->header_.size()), limit);
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
                       // Closed: its stream may be closed too; nothing more is handled.
                       if (ec || self->closing_ || self->closed_) {
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
      // Still counted as using the stream, so it is not closed under this connection.
      std::erase_if(stream_ptr_->heartbeats, [](const auto& w) { return w.expired(); });
      stream_ptr_->heartbeats.push_back(weak_from_this());
    }
    c_->counters.heartbeats++;
    if (!hb->checkpoint.empty()) c_->OnAgentCheckpoint(stream_ptr_, agent_key_, hb->checkpoint);
    if (c_->options.monitors != nullptr) {
      monitor::Heartbeat seen;
      seen.agent = stream_ptr_->agent_id;
      seen.epoch = stream_ptr_->epoch_hex;
      seen.agent_wall_ns = hb->agent_wall_ns;
      seen.head_seq = hb->head_seq;
      seen.spool_bytes = hb->spool_bytes;
      seen.spool_quota = hb->spool_quota;
      for (const auto& d : hb->destinations) seen.destinations.emplace_back(d.name, d.acked_next);
      seen.to = hb->to;
      c_->options.monitors->OnHeartbeat(seen);
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
    std::string log_note;
    wire::TlsBinding binding{};
    if (!wire::ComputeTlsBinding(stream_.native_handle(), &binding)) {
      Reject(wire::ErrorCode::kMalformed, "no TLS binding for this session (TLS exporter failed)");
      return;
    }
    auto [code, message] = c_->Authenticate(
        *hello, nonce_, binding, SSL_get_certificate(stream_.native_handle()), &log_note);
    if (!message.empty()) {
      Reject(code, message, log_note);
      return;
    }
    auto stream = c_->OpenStream(*hello);
    if (!stream.ok()) {
      Reject(stream.status().code() == StatusCode::kResourceExhausted
                 ? wire::ErrorCode::kLimitExceeded
                 : wire::ErrorCode::kStoreFailure,
             stream.status().message());
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
    w.next_seq = stream_ptr_->welcome_next();
    w.max_frame = c_->options.max_frame;
    Send(wire::MessageType::kWelcome, wire::EncodeWelcome(w));
    last_ack_ = 0;
    Send(wire::MessageType::kAck, wire::EncodeAck(stream_ptr_->durable_next()));
    last_ack_ = stream_ptr_->durable_next();
  }

  void HandleBatch() {
    wire::BatchHeader h;
    wire::BatchFault fault = wire::BatchFault::kNone;
    Status s = decoder_.Decode(body_, &h, &records_, &leaves_, &fault);
    if (!s.ok()) {
      Reject(RefusalCode(fault), s.message());
      return;
    }
    if (stream_ptr_->broken) {  // its store is being reopened (Impl::HealStores)
      Reject(wire::ErrorCode::kStoreFailure,
             "the collector cannot write this stream's store now; it reopens it by itself: "
             "connect again in a few seconds");
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
    stream_ptr_->last_used_ns = c_->env->clock()->MonotonicNanos();
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
  const std::string address_;  // the peer's IP, for the per-address limit
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
  bool tls_up_ = false;  // the TLS handshake completed
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
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      // At the descriptor limit (EMFILE) accept fails at once: wait before the next.
      auto timer = std::make_shared<asio::steady_timer>(io, accept_pacer.Failed(ec.message()));
      timer->async_wait([this, acceptor, timer](const boost::system::error_code& e) {
        if (!e && acceptor->is_open()) Accept(acceptor);
      });
      return;
    }
    accept_pacer.Succeeded();
    boost::system::error_code peer_ec;
    const auto ep = sock.remote_endpoint(peer_ec);
    const std::string address = peer_ec ? "?" : ep.address().to_string();
    const std::string peer = peer_ec ? "?" : address + ":" + std::to_string(ep.port());
    counters.connections++;
    if (!WithinConnectionLimits(address)) {
      boost::system::error_code ignored;
      sock.close(ignored);
      Accept(acceptor);
      return;
    }
    sock.set_option(tcp::no_delay(true), peer_ec);
    auto c = std::make_shared<Connection>(this, TlsStream(std::move(sock), *tls), address, peer);
    connections.push_back(c);
    c->Start();
    Accept(acceptor);
  });
}

bool Collector::Impl::CloseAnIdleStream() {
  Stream* victim = nullptr;
  const auto open = [](const std::weak_ptr<Connection>& w) {
    auto c = w.lock();
    return c != nullptr && c->open();
  };
  for (const auto& [key, s] : streams) {
    if (s->closing || s->broken) continue;
    const bool live = std::any_of(s->connections.begin(), s->connections.end(), open) ||
                      std::any_of(s->heartbeats.begin(), s->heartbeats.end(), open);
    if (!live && (victim == nullptr || s->last_used_ns < victim->last_used_ns)) victim = s.get();
  }
  if (victim == nullptr) return false;
  victim->closing = true;
  victim->close_attaches = victim->attaches;
  {
    MutexLock lock(&dirty_mu);
    close_requests.push_back(victim);
  }
  dirty_cv.Signal();
  return true;
}

void Collector::Impl::OnStoreBroken(Stream* s, const std::string& error) {
  s->broken_durable = s->store->durable_next();
  s->broken = true;  // from here on this thread leaves s->store to the committer
  for (const auto& w : s->connections) {
    if (auto c = w.lock()) {
      c->Reject(wire::ErrorCode::kStoreFailure,
                "the collector cannot write this stream's store (" + error +
                    "); it reopens it by itself: connect again in a few seconds");
    }
  }
  {
    MutexLock lock(&dirty_mu);
    heal_ready.insert(s);
  }
  dirty_cv.Signal();
}

void Collector::Impl::SendAcks(Stream* s) {
  if (s->broken) return;
  for (const auto& w : s->connections) {
    if (auto c = w.lock()) c->SendAck(s->store->durable_next());
  }
}

bool Collector::Impl::WithinConnectionLimits(const std::string& address) {
  std::erase_if(connections, [](const std::weak_ptr<Connection>& w) {
    auto c = w.lock();
    return c == nullptr || !c->open();
  });
  int from_address = 0;
  for (const auto& w : connections) {
    if (auto c = w.lock(); c != nullptr && c->address() == address) ++from_address;
  }
  const bool total_ok = static_cast<int>(connections.size()) < options.max_connections;
  if (total_ok && from_address < options.max_connections_per_address) return true;
  counters.connections_refused++;
  ++refusals_unlogged;
  // Logged at most every 10 s, with a count: a flood must not become a flood of log lines.
  const int64_t now = env->clock()->MonotonicNanos();
  if (refusals_logged_ns == 0 || now - refusals_logged_ns >= 10'000'000'000) {
    LogWarning("collector: refused " + std::to_string(refusals_unlogged) +
               " connection(s) over the limits (last from " + address + "; max_connections " +
               std::to_string(options.max_connections) + ", max_connections_per_address " +
               std::to_string(options.max_connections_per_address) + ")");
    refusals_logged_ns = now;
    refusals_unlogged = 0;
  }
  return false;
}

void Collector::Impl::CloseConnections() {
  for (auto& w : connections) {
    if (auto c = w.lock()) c->Close();
  }
}

}  // namespace gapless::collector
