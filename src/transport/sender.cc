#include "transport/sender.h"

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <random>

#include "base/address.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "transport/frames.h"
#include "wire/wire.h"

namespace gapless::transport {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

// Everything here belongs to the sender's thread, except the atomics (read by stats()).
struct Sender::Impl : std::enable_shared_from_this<Sender::Impl> {
  // One connection attempt. Handlers hold it and do nothing once it is no longer current.
  struct Conn {
    Conn(asio::io_context& io, ssl::context& tls) : stream(io, tls), timer(io) {}
    ssl::stream<tcp::socket> stream;
    asio::steady_timer timer;  // connect / handshake timeout
    std::array<char, wire::kFrameHeaderSize> header{};
    std::string body;
    std::deque<std::shared_ptr<const std::string>> out;
    bool writing = false;
    bool welcomed = false;
    bool challenged = false;
    bool sent_token = false;  // this connection's hello carried the enrollment token
    bool draining = false;    // replaced by a reconfiguration; half-close after this write
  };

  spool::Spool* spool = nullptr;
  AgentIdentity id;
  DestinationOptions opt;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_guard;
  std::thread thread;
  std::unique_ptr<ssl::context> tls;
  std::shared_ptr<Conn> conn;
  asio::steady_timer retry_timer{io};
  asio::steady_timer pump_timer{io};
  asio::steady_timer persist_timer{io};
  bool pump_scheduled = false;
  bool persist_scheduled = false;
  bool stopping = false;
  // The enrollment token is sent only to a collector that answered unknown_agent to a
  // hello without it, and never again once a hello with it was welcomed (it is used up).
  bool send_token = false;
  int attempt = 0;
  uint32_t max_frame = wire::kMaxFrameBytes;

  std::unique_ptr<spool::Reader> reader;
  std::optional<spool::Record> held;  // read but not yet sent: starts the next batch
  uint64_t next_send = 0;             // seq the next batch should start at
  bool gap_pending = false;           // the next batch must declare a gap before it
  // Unacknowledged batches, kept encoded: after a reconnect they are sent again from
  // memory (the collector drops what it already has), so a reconnection costs no spool
  // reading however far into a segment the sender is.
  struct Batch {
    uint64_t first = 0;
    uint64_t end = 0;  // exclusive
    std::shared_ptr<const std::string> frame;
  };
  std::deque<Batch> inflight;
  uint64_t persisted = 0;
  wire::BatchEncoder encoder;
  std::function<std::string()> latest_checkpoint;  // may be empty
  std::string carried_checkpoint;                  // the last one a batch carried
  std::mt19937_64 rng{std::random_device{}()};

  std::atomic<uint64_t> acked_next{0}, sent_records{0}, batches{0}, connects{0},
      connect_failures{0}, rejections{0}, restarts{0};
  std::atomic<bool> connected{false};
  env::Clock* clock = nullptr;            // the spool's Env's: time is injected
  std::atomic<int64_t> last_progress{0};  // set at Start

  Status MakeTls() {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION);
    boost::system::error_code ec;
    ctx->load_verify_file(opt.ca_file, ec);
    if (ec) {
      return InvalidArgumentError("destination " + opt.name + ": cannot load ca_file " +
                                  opt.ca_file + ": " + ec.message());
    }
    ctx->set_verify_mode(ssl::verify_peer);
    tls = std::move(ctx);
    return Status::Ok();
  }

  void Connect() {
    if (stopping) return;
    auto c = std::make_shared<Conn>(io, *tls);
    conn = c;
    std::string address;
    uint16_t port = 0;
    boost::system::error_code ec;
    Status s = ParseListenAddress(opt.address, &address, &port);
    const auto ip = s.ok() ? asio::ip::make_address(address, ec) : asio::ip::address();
    if (!s.ok() || ec) {
      Fail(c, "bad address " + opt.address);
      return;
    }
    auto self = shared_from_this();
    c->timer.expires_after(std::chrono::milliseconds(opt.connect_timeout_ms));
    c->timer.async_wait([self, c](const boost::system::error_code& e) {
      if (!e && self->conn == c && !c->welcomed) self->Fail(c, "connect/handshake timed out");
    });
    c->stream.lowest_layer().async_connect(
        tcp::endpoint(ip, port), [self, c](const boost::system::error_code& e) {
          if (self->conn != c) return;
          if (e) {
            self->Fail(c, "connect: " + e.message());
            return;
          }
          boost::system::error_code ignored;
          c->stream.lowest_layer().set_option(tcp::no_delay(true), ignored);
          SSL_set_tlsext_host_name(c->stream.native_handle(), self->opt.server_name.c_str());
          c->stream.set_verify_callback(ssl::host_name_verification(self->opt.server_name));
          c->stream.async_handshake(ssl::stream_base::client,
                                    [self, c](const boost::system::error_code& he) {
                                      if (self->conn != c) return;
                                      if (he) {
                                        self->Fail(c, "TLS handshake: " + he.message());
                                        return;
                                      }
                                      ReadFrames(self, c);
                                    });
        });
  }

  // Drops the connection and everything in flight; reconnects after a backoff (or at
  // once when `immediate`).
  void Fail(const std::shared_ptr<Conn>& c, const std::string& why, bool immediate = false) {
    if (conn != c || c == nullptr) return;
    if (!c->welcomed) connect_failures++;
    if (!why.empty()) {
      LogWarning("sender " + opt.name + " → " + opt.address + ": " + why);
    }
    Drop();
    if (stopping) return;
    int64_t delay = 0;
    if (!immediate) {
      const int64_t cap =
          std::min<int64_t>(opt.backoff_max_ms, opt.backoff_initial_ms << std::min(attempt, 20));
      delay = std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng);  // jittered
      ++attempt;
    }
    auto self = shared_from_this();
    retry_timer.expires_after(std::chrono::milliseconds(delay));
    retry_timer.async_wait([self](const boost::system::error_code& e) {
      if (!e && self->conn == nullptr) self->Connect();
    });
  }

  // Forgets the connection and everything in flight. `graceful` (a reconfiguration, not
  // an error): the old connection is only half-closed, so the batches already written
  // still reach the collector and count towards what the next connection is told is
  // stored; it is closed for good 2 s later. Nothing here waits.
  void Drop(bool graceful = false) {
    if (conn != nullptr) {
      boost::system::error_code ignored;
      auto old = std::move(conn);
      if (graceful && old->welcomed) {
        old->draining = true;  // a write in progress finishes, then the half-close
        if (!old->writing) old->stream.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
        old->timer.expires_after(std::chrono::seconds(2));
        old->timer.async_wait([old](const boost::system::error_code&) {
          boost::system::error_code e;
          old->stream.lowest_layer().close(e);
        });
      } else {
        old->timer.cancel();
        old->stream.lowest_layer().close(ignored);
      }
    }
    connected = false;
  }

  // Forgets the batches in flight and the read position: the next welcome re-reads from
  // the spool at whatever seq the collector names.
  void ForgetPosition() {
    inflight.clear();
    reader.reset();
    held.reset();
  }

  void Send(const std::shared_ptr<Conn>& c, std::string frame) {
    Send(c, std::make_shared<const std::string>(std::move(frame)));
  }
  void Send(const std::shared_ptr<Conn>& c, std::shared_ptr<const std::string> frame) {
    c->out.push_back(std::move(frame));
    if (!c->writing) WriteNext(c);
  }

  void WriteNext(const std::shared_ptr<Conn>& c) {
    if (c->out.empty()) {
      c->writing = false;
      return;
    }
    c->writing = true;
    auto self = shared_from_this();
    asio::async_write(c->stream, asio::buffer(*c->out.front()),
                      [self, c](const boost::system::error_code& e, size_t) {
                        if (self->conn != c) {
                          c->writing = false;
                          boost::system::error_code ignored;
                          if (c->draining) {
                            c->stream.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
                          }
                          return;
                        }
                        if (e) {
                          self->Fail(c, "write: " + e.message());
                          return;
                        }
                        c->out.pop_front();
                        self->WriteNext(c);
                      });
  }

  void Handle(const std::shared_ptr<Conn>& c, wire::MessageType type) {
    switch (type) {
      case wire::MessageType::kChallenge: {
        // One challenge per connection: a second would let a peer collect signatures.
        if (c->challenged) return Fail(c, "a second challenge on one connection: refused");
        c->challenged = true;
        c->sent_token = send_token && !id.enroll_token.empty();
        auto frame = HelloFrame(c->body, id, spool->epoch(), c->stream.native_handle(),
                                opt.server_name, c->sent_token);
        if (!frame.ok()) return Fail(c, frame.status().message());
        Send(c, std::move(*frame));
        return;
      }
      case wire::MessageType::kWelcome: {
        auto w = wire::DecodeWelcome(c->body);
        if (!w.ok()) return Fail(c, w.status().message());
        OnWelcome(c, *w);
        return;
      }
      case wire::MessageType::kAck: {
        auto n = wire::DecodeAck(c->body);
        if (!n.ok() || !c->welcomed) return Fail(c, "bad ack");
        OnAck(*n);
        return;
      }
      case wire::MessageType::kError: {
        auto e = wire::DecodeError(c->body);
        rejections++;
        if (!e.ok()) return Fail(c, "malformed error frame");
        if (e->code == wire::ErrorCode::kUnknownAgent && !id.enroll_token.empty() &&
            !c->sent_token) {
          LogInfo("sender " + opt.name + " → " + opt.address +
                  ": not enrolled there yet; connecting again with the enrollment token");
          send_token = true;
          return Fail(c, "", /*immediate=*/true);
        }
        const bool superseded = e->code == wire::ErrorCode::kSuperseded;
        // The collector reopens a store that failed a write by itself within seconds of
        // the disk taking writes again: try again within ~2 s, not after the full backoff.
        const bool store_failed = e->code == wire::ErrorCode::kStoreFailure;
        if (store_failed) attempt = std::min(attempt, 4);
        LogLevel level = superseded     ? LogLevel::kInfo
                         : store_failed ? LogLevel::kWarning
                                        : LogLevel::kError;
        Log(level, "sender " + opt.name + " → " + opt.address +
                       ": collector closed the "
                       "connection: " +
                       std::string(wire::ErrorCodeName(e->code)) + ": " + e->message);
        return Fail(c, "");
      }
      default:
        return Fail(c, "unexpected message from the collector");
    }
  }

  void OnWelcome(const std::shared_ptr<Conn>& c, const wire::Welcome& w) {
    c->welcomed = true;
    if (c->sent_token) {
      LogInfo("sender " + opt.name + " → " + opt.address +
              ": enrolled with the one-time token; it is not sent again");
      id.enroll_token.clear();
      send_token = false;
    }
    c->timer.cancel();
    connected = true;
    connects++;
    max_frame = w.max_frame;
    const uint64_t durable = spool->durable_size();
    if (w.next_seq > durable) {
      return Fail(c, "the collector holds seq " + std::to_string(w.next_seq - 1) +
                         " but this spool has only " + std::to_string(durable) +
                         " durable records: is another agent using this identity and epoch?");
    }
    while (!inflight.empty() && inflight.front().end <= w.next_seq) inflight.pop_front();
    const uint64_t resend_from = inflight.empty() ? next_send : inflight.front().first;
    if (reader != nullptr && w.next_seq >= resend_from && w.next_seq <= next_send) {
      // The fast path: what the collector lacks is in memory or next in the reader.
      for (const Batch& b : inflight) Send(c, b.frame);
      Pump();
      return;
    }
    ForgetPosition();
    next_send = w.next_seq;
    gap_pending = false;
    const uint64_t oldest = spool->oldest_seq();
    if (next_send < oldest) SkipTo(oldest);
    auto r = spool->NewReader(next_send);
    if (!r.ok()) return Fail(c, "spool reader: " + r.status().ToString());
    reader = std::move(*r);
    Pump();
  }

  // The seqs [next_send, to) are gone from the spool. A required destination finds them
  // named by the spool's own LOSS record (drop_oldest); an optional one writes its own.
  void SkipTo(uint64_t to) {
    LogWarning("sender " + opt.name + ": seqs " + std::to_string(next_send) + ".." +
               std::to_string(to - 1) +
               " are no longer in the spool; the collector is told "
               "they are gone (see the LOSS records)");
    if (!opt.required) {
      spool::LossRecord loss;
      loss.reason = spool::LossReason::kDestinationSkipped;
      loss.has_seq_range = true;
      loss.first_seq = next_send;
      loss.last_seq = to - 1;
      loss.record_count = to - next_send;
      loss.detail = "optional destination " + opt.name + " fell behind";
      // Synced here: no input may append (and so sync) again soon, and a LOSS record
      // that is not durable is not sent. A rare fsync on this sender's own thread.
      StatusOr<uint64_t> appended = spool->AppendLoss(loss);
      const Status s = appended.ok() ? spool->Sync() : appended.status();
      if (!s.ok()) {
        LogError("sender " + opt.name + ": cannot record the skipped seqs: " + s.ToString());
      }
    }
    next_send = to;
    gap_pending = true;
  }

  void OnAck(uint64_t n) {
    if (n <= acked_next.load(std::memory_order_relaxed)) {
      Pump();
      return;
    }
    acked_next.store(n, std::memory_order_release);
    last_progress.store(clock->MonotonicNanos(), std::memory_order_release);
    attempt = 0;
    while (!inflight.empty() && inflight.front().end <= n) inflight.pop_front();
    SchedulePersist();
    Pump();
  }

  void SchedulePersist() {
    if (persist_scheduled) return;
    persist_scheduled = true;
    auto self = shared_from_this();
    persist_timer.expires_after(std::chrono::milliseconds(opt.cursor_persist_ms));
    persist_timer.async_wait([self](const boost::system::error_code&) {
      self->persist_scheduled = false;
      self->PersistCursor();
    });
  }

  void PersistCursor() {
    const uint64_t to = std::min(acked_next.load(), spool->durable_size());
    if (to <= persisted) return;
    if (Status s = spool->AdvanceCursor(opt.name, to); !s.ok()) {
      LogError("sender " + opt.name + ": cannot save the acked position: " + s.ToString());
      return;
    }
    persisted = to;
  }

  // Fills the window with batches of durable records.
  void Pump() {
    if (conn == nullptr || !conn->welcomed || reader == nullptr) return;
    while (inflight.size() < opt.window) {
      std::string frame;
      const uint64_t first = next_send;
      Status s = NextBatch(&frame);
      if (!s.ok()) {
        ForgetPosition();
        return Fail(conn, "spool: " + s.ToString());
      }
      if (frame.empty()) break;
      auto shared = std::make_shared<const std::string>(std::move(frame));
      inflight.push_back(Batch{first, next_send, shared});
      Send(conn, std::move(shared));
    }
    if (!pump_scheduled) {  // records not yet durable, or a partial batch waiting
      pump_scheduled = true;
      auto self = shared_from_this();
      pump_timer.expires_after(std::chrono::milliseconds(opt.batch_delay_ms));
      pump_timer.async_wait([self](const boost::system::error_code&) {
        self->pump_scheduled = false;
        self->Pump();
      });
    }
  }

  // The agent's signed checkpoint rides on the batch being built when it is new.
  void CarryCheckpoint() {
    if (!latest_checkpoint) return;
    std::string note = latest_checkpoint();
    if (note.empty() || note == carried_checkpoint) return;
    if (encoder.SetCheckpoint(note)) carried_checkpoint = std::move(note);
  }

  // Builds the next batch into *frame (empty: nothing to send now).
  Status NextBatch(std::string* frame) {
    bool started = false;
    uint64_t expect = next_send;
    const uint32_t max_raw = std::min<uint32_t>(opt.batch_bytes, max_frame / 2);
    for (;;) {
      if (started && (encoder.count() >= opt.batch_records || encoder.raw_bytes() >= max_raw)) {
        break;
      }
      spool::Record rec;
      if (held) {
        rec = std::move(*held);
        held.reset();
      } else {
        auto got = reader->Next(&rec);
        if (!got.ok() && got.status().code() == StatusCode::kNotFound) {
          if (started) break;  // send what we have; skip on the next batch
          SkipTo(spool->oldest_seq());
          auto r = spool->NewReader(next_send);
          if (!r.ok()) return r.status();
          reader = std::move(*r);
          expect = next_send;
          continue;
        }
        if (!got.ok()) return got.status();
        if (!*got) break;  // caught up with the durable records
      }
      if (!started) {
        if (rec.seq != expect) gap_pending = true;  // damage hid seqs; their LOSS is in the spool
        encoder.Reset(rec.seq, gap_pending ? wire::kBatchGapBefore : 0);
        CarryCheckpoint();
        started = true;
      } else if (rec.seq != expect) {
        held = std::move(rec);  // a hole: the next batch declares it
        break;
      }
      encoder.Add(rec.type, crc32c::Value(rec.payload), rec.payload);
      expect = rec.seq + 1;
    }
    if (!started) return Status::Ok();
    RETURN_IF_ERROR(encoder.Finish(frame));
    gap_pending = false;
    next_send = expect;
    sent_records += encoder.count();
    batches++;
    return Status::Ok();
  }
};

StatusOr<std::unique_ptr<Sender>> Sender::Start(spool::Spool* spool, AgentIdentity identity,
                                                DestinationOptions options,
                                                std::function<std::string()> latest_checkpoint) {
  if (identity.key == nullptr) return InvalidArgumentError("sender: no agent key");
  RETURN_IF_ERROR(spool->AddCursor(options.name, options.required));
  std::unique_ptr<Sender> s(new Sender());
  s->name_ = options.name;
  auto impl = std::make_shared<Impl>();
  impl->spool = spool;
  impl->clock = spool->env()->clock();
  impl->last_progress.store(impl->clock->MonotonicNanos(), std::memory_order_relaxed);
  impl->id = std::move(identity);
  impl->opt = std::move(options);
  impl->latest_checkpoint = std::move(latest_checkpoint);
  RETURN_IF_ERROR(impl->MakeTls());
  ASSIGN_OR_RETURN(uint64_t cursor, spool->CursorPosition(impl->opt.name));
  impl->acked_next = cursor;
  impl->persisted = cursor;
  impl->work_guard.emplace(impl->io.get_executor());
  asio::post(impl->io, [impl] { impl->Connect(); });
  impl->thread = std::thread([impl] { impl->io.run(); });
  s->impl_ = std::move(impl);
  return s;
}

Sender::~Sender() { Stop(); }

void Sender::Reconfigure(const DestinationOptions& options) {
  auto impl = impl_;
  asio::post(impl->io, [impl, options] {
    if (impl->stopping) return;
    impl->restarts++;
    DestinationOptions next = options;
    next.name = impl->opt.name;  // the cursor stays
    const DestinationOptions old = impl->opt;
    impl->opt = next;
    if (Status s = impl->MakeTls(); !s.ok()) {
      LogError(s.message() + "; keeping the previous settings");
      impl->opt = old;
      return;
    }
    impl->Drop(/*graceful=*/true);
    impl->retry_timer.cancel();
    impl->attempt = 0;
    impl->Connect();
  });
}

void Sender::Restart() {
  auto impl = impl_;
  asio::post(impl->io, [impl] {
    if (impl->stopping) return;
    impl->restarts++;
    impl->Drop();
    impl->retry_timer.cancel();
    impl->Connect();
  });
}

void Sender::Stop() {
  if (impl_ == nullptr || !impl_->thread.joinable()) return;
  auto impl = impl_;
  asio::post(impl->io, [impl] {
    impl->stopping = true;
    impl->Drop();
    impl->retry_timer.cancel();
    impl->pump_timer.cancel();
    impl->persist_timer.cancel();
    impl->PersistCursor();
    impl->work_guard.reset();
  });
  impl->thread.join();
}

SenderStats Sender::stats() const {
  SenderStats s;
  s.acked_next = impl_->acked_next.load(std::memory_order_acquire);
  s.sent_records = impl_->sent_records.load();
  s.batches = impl_->batches.load();
  s.connects = impl_->connects.load();
  s.connect_failures = impl_->connect_failures.load();
  s.rejections = impl_->rejections.load();
  s.restarts = impl_->restarts.load();
  s.connected = impl_->connected.load();
  s.last_progress_mono_ns = impl_->last_progress.load(std::memory_order_acquire);
  return s;
}

}  // namespace gapless::transport
