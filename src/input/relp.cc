// RELP input: rsyslog's omrelp (and any librelp client) with end-to-end acknowledgement.
//
// Why our own server and not librelp's: librelp sends the "rsp" for a syslog frame as
// soon as its receive callback returns, with no way to defer it. Acknowledging only
// durable data through it would mean one fsync per message (about 6,000 messages/s on
// this disk). Here every syslog frame is appended to the spool and its "200 OK" is
// queued; one Ingest::OnDurable registration per read releases all the responses that
// the next group commit covers. See docs/formats/relp.md and docs/development.md.
//
// Per connection, in order: frames are parsed; a message the full spool refuses is held
// with every frame after it and reading pauses (the sender's window fills and it waits).
// Responses go out in txnr order. A protocol error or a failed fsync closes the
// connection without acknowledging what is not durable; the sender resends it
// (a duplicate at worst, never a loss).
#include <algorithm>
#include <deque>

#include "base/log.h"
#include "event/event.h"
#include "input/input.h"
#include "input/stream_listener.h"
#include "input/syslog_sink.h"
#include "relp/relp_frame.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = StreamListener::TlsStream;

constexpr size_t kReadBytes = 64 * 1024;
// Reading pauses while this many responses wait for durability or for the sender to
// read them (a client that never reads its responses cannot grow our memory).
constexpr size_t kMaxPendingResponses = 16 * 1024;
constexpr size_t kMaxUnsentBytes = 256 * 1024;

using Shared = StreamShared;

// A frame received but not yet handled (the spool was full when its turn came).
struct HeldFrame {
  uint32_t txnr = 0;
  std::string command;
  std::string data;
  uint64_t data_length = 0;  // as declared (more than data.size() when cut)
  uint16_t flags = 0;
  int64_t observed_ns = 0;
};

// A response waiting for records [0, seq_end) to be durable.
struct Response {
  uint32_t txnr = 0;  // 0: a serverclose notice
  uint64_t seq_end = 0;
  std::string data;  // "200 OK", "500 ..."
  bool is_message_ack = false;
  bool close_after = false;
};

std::string OpenResponse(std::string_view offers, bool* ok) {
  // The client lists the commands it wants; we serve "syslog" only.
  *ok = true;
  size_t pos = 0;
  while (pos <= offers.size()) {
    size_t end = offers.find('\n', pos);
    if (end == std::string_view::npos) end = offers.size();
    const std::string_view line = offers.substr(pos, end - pos);
    if (line.starts_with("commands=")) {
      *ok = (',' + std::string(line.substr(9)) + ',').find(",syslog,") != std::string::npos;
    }
    pos = end + 1;
  }
  if (!*ok) return "500 the client does not offer the syslog command";
  return "200 OK\nrelp_version=0\nrelp_software=gapless\ncommands=syslog";
}

template <class Stream>
class RelpConnection : public ConnectionBase,
                       public std::enable_shared_from_this<RelpConnection<Stream>> {
 public:
  RelpConnection(std::shared_ptr<Shared> shared, Stream stream, std::string peer)
      : shared_(std::move(shared)),
        stream_(std::move(stream)),
        parser_(shared_->options.max_message_bytes),
        sink_(shared_->ctx.ingest, &shared_->source, &shared_->counters),
        buf_(kReadBytes) {
    sink_.set_peer(std::move(peer));
  }

  void Start() {
    HandshakeThen(
        stream_, this->shared_from_this(), source() + ": " + sink_.peer(),
        [](RelpConnection& c) { c.Continue(); }, [](RelpConnection& c) { c.Close(); });
  }

  void Shutdown() override {
    if (closed_) return;
    uint64_t count = 0, bytes = 0;
    int64_t first = 0, last = 0;
    for (const HeldFrame& f : held_) {
      if (f.command != "syslog") continue;
      if (count++ == 0) first = f.observed_ns;
      last = f.observed_ns;
      bytes += f.data.size();
    }
    RecordUnstoredAtStop(shared_->ctx.ingest, shared_->source, count, bytes, first, last,
                         &shared_->counters);
    held_.clear();
    Close();
  }

 private:
  const std::string& source() const { return shared_->source; }

  void Read() {
    reading_ = true;
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(buf_), [self](const boost::system::error_code& ec,
                                                       size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    const int64_t now = shared_->ctx.clock->NowNanos();
    const Status s = parser_.Feed(std::string_view(buf_.data(), n),
                                  [&](const relp::Frame& f) { OnFrame(f, now); });
    if (!s.ok()) Fail(s.message());
    if (ec) {
      if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated &&
          ec != asio::error::operation_aborted) {
        LogInfo(source() + ": connection from " + sink_.peer() + " ended: " + ec.message());
      }
      if (parser_.mid_frame()) {
        LogWarning(source() + ": " + sink_.peer() +
                   " closed in the middle of a frame; the sender resends unacknowledged data");
      }
      finishing_ = true;
    }
    Continue();
  }

  void OnFrame(const relp::Frame& f, int64_t now) {
    if (finishing_) return;  // after close or a protocol error nothing more is taken
    if (f.txnr != expected_txnr_) {
      Fail("txnr " + std::to_string(f.txnr) + " where " + std::to_string(expected_txnr_) +
           " was expected");
      return;
    }
    expected_txnr_ = relp::NextTxnr(f.txnr);
    uint16_t flags = f.truncated() ? event::kTruncated : 0;
    if (f.command == "close") finishing_ = true;
    if (held_.empty() && Handle(f, flags, now)) return;
    held_.push_back(
        HeldFrame{f.txnr, std::string(f.command), std::string(f.data), f.data_length, flags, now});
  }

  // Acts on one frame. False: the spool refused the message (it must be held).
  bool Handle(const relp::Frame& f, uint16_t flags, int64_t observed) {
    if (f.command == "syslog") {
      if (!open_) {
        Respond(f.txnr, "500 the session is not open");
        Fail("a syslog frame before open");
        return true;
      }
      const Status s = sink_.Store(f.data, flags, observed, &seq_end_);
      if (!s.ok()) {
        NoteRefusal(s);
        return false;
      }
      if (f.truncated()) {
        LogWarning(source() + ": a message from " + sink_.peer() + " of " +
                   std::to_string(f.data_length) + " bytes was stored cut to " +
                   std::to_string(f.data.size()) + " (max_message_bytes)");
      }
      responses_.push_back(Response{f.txnr, seq_end_, "200 OK", true, false});
    } else if (f.command == "open") {
      bool ok = false;
      std::string rsp = OpenResponse(f.data, &ok);
      Respond(f.txnr, std::move(rsp));
      if (ok) {
        open_ = true;
      } else {
        Fail("the client does not offer the syslog command");
      }
    } else if (f.command == "close") {
      // Answered once every message before it is durable; then the server closes.
      // librelp reads a status code in every rsp, so even this one carries "200 OK".
      responses_.push_back(Response{f.txnr, seq_end_, "200 OK", false, true});
    } else {
      Respond(f.txnr, "500 command not supported: " + std::string(f.command));
    }
    return true;
  }

  bool Handle(const HeldFrame& h) {
    relp::Frame f;
    f.txnr = h.txnr;
    f.command = h.command;
    f.data = h.data;
    f.data_length = h.data_length;
    return Handle(f, h.flags, h.observed_ns);
  }

  // Queues a response that needs no new durability (ordered after earlier responses).
  void Respond(uint32_t txnr, std::string data) {
    responses_.push_back(Response{txnr, seq_end_, std::move(data), false, false});
  }

  // A protocol violation: answer what is durable, tell the client, and close.
  void Fail(const std::string& why) {
    if (failed_protocol_) return;
    failed_protocol_ = true;
    finishing_ = true;
    LogWarning(source() + ": closing the RELP session with " + sink_.peer() + ": " + why +
               " (unacknowledged messages will be resent by the sender)");
    responses_.push_back(Response{0, seq_end_, "", false, true});
  }

  void NoteRefusal(const Status& s) {
    if (s.code() == StatusCode::kResourceExhausted) return;
    if (!spool_failed_) {
      LogError(source() + ": cannot store messages from " + sink_.peer() + ": " + s.ToString() +
               "; nothing more is acknowledged (the sender keeps its messages)");
    }
    spool_failed_ = true;
  }

  // Handles held frames, asks for durability of what was stored, reads on or waits.
  void Continue() {
    if (closed_) return;
    while (!held_.empty()) {
      if (!Handle(held_.front())) {
        if (!spool_failed_) WaitForRoom(held_.front().data.size());
        RequestDurable();
        return;
      }
      held_.pop_front();
    }
    RequestDurable();
    if (finishing_) {
      CloseWhenAnswered();
    } else if (!reading_ && responses_.size() < kMaxPendingResponses &&
               out_.size() + writing_.size() < kMaxUnsentBytes) {
      Read();
    }
  }

  void WaitForRoom(size_t bytes) {
    shared_->counters.paused.fetch_add(1, std::memory_order_relaxed);
    auto self = this->shared_from_this();
    asio::io_context* io = shared_->ctx.io;
    shared_->ctx.ingest->OnRoom(bytes + 512,
                                [self, io] { asio::post(*io, [self] { self->Continue(); }); });
  }

  // One OnDurable registration covers every response queued so far.
  void RequestDurable() {
    if (seq_end_ > requested_) {
      requested_ = seq_end_;
      auto self = this->shared_from_this();
      asio::io_context* io = shared_->ctx.io;
      const uint64_t seq_end = seq_end_;
      shared_->ctx.ingest->OnDurable(seq_end, [self, io, seq_end](const Status& s) {
        asio::post(*io, [self, seq_end, s] { self->OnDurable(seq_end, s); });
      });
    }
    SendAnswered();
  }

  void OnDurable(uint64_t seq_end, const Status& s) {
    if (closed_) return;
    if (!s.ok()) {
      LogError(source() + ": the spool could not make messages from " + sink_.peer() +
               " durable: " + s.ToString() + "; closing without acknowledging them");
      Close();
      return;
    }
    durable_ = std::max(durable_, seq_end);
    SendAnswered();
    Continue();
  }

  // Moves every response whose records are durable to the output, in order.
  void SendAnswered() {
    while (!responses_.empty() && responses_.front().seq_end <= durable_) {
      const Response& r = responses_.front();
      if (r.txnr == 0) {
        relp::AppendFrame(0, "serverclose", "", &out_);
      } else {
        relp::AppendFrame(r.txnr, "rsp", r.data, &out_);
      }
      if (r.is_message_ack) shared_->counters.acked.fetch_add(1, std::memory_order_relaxed);
      if (r.close_after) close_after_write_ = true;
      responses_.pop_front();
    }
    Write();
  }

  void Write() {
    if (writing_active_ || out_.empty() || closed_) return;
    writing_active_ = true;
    writing_.swap(out_);
    auto self = this->shared_from_this();
    asio::async_write(
        stream_, asio::buffer(writing_), [self](const boost::system::error_code& ec, size_t) {
          self->writing_active_ = false;
          self->writing_.clear();
          if (self->closed_) return;
          if (ec) {
            LogInfo(self->source() + ": cannot answer " + self->sink_.peer() + ": " + ec.message());
            self->Close();
            return;
          }
          if (!self->out_.empty()) {
            self->Write();
          } else if (self->close_after_write_) {
            self->Close();
          } else {
            self->Continue();
          }
        });
  }

  // After close, EOF or a protocol error: close once the last response is written.
  void CloseWhenAnswered() {
    if (responses_.empty() && out_.empty() && !writing_active_ && held_.empty()) Close();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.lowest_layer().close(ignored);
  }

  std::shared_ptr<Shared> shared_;
  Stream stream_;
  relp::Parser parser_;
  SyslogSink sink_;
  std::vector<char> buf_;
  std::deque<HeldFrame> held_;
  std::deque<Response> responses_;
  std::string out_;      // responses ready to write
  std::string writing_;  // the buffer of the write in flight
  uint32_t expected_txnr_ = 1;
  uint64_t seq_end_ = 0;    // after the last record this connection stored
  uint64_t requested_ = 0;  // highest seq_end an OnDurable was asked for
  uint64_t durable_ = 0;    // highest seq_end known durable
  bool open_ = false;
  bool reading_ = false;
  bool writing_active_ = false;
  bool finishing_ = false;  // no more frames are taken
  bool close_after_write_ = false;
  bool failed_protocol_ = false;
  bool spool_failed_ = false;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Input> NewRelpInput(const Context& ctx, const SyslogOptions& options) {
  return std::make_unique<StreamInput<RelpConnection>>(ctx, options, "RELP", "relp:");
}

}  // namespace gapless::input
