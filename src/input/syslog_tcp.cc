// Syslog over TCP and TLS (RFC 6587 framing, RFC 5425 TLS transport).
//
// One Connection per accepted socket, owned by shared_ptrs held by its pending handlers.
// Backpressure: a message the full spool refuses is kept (held_) with everything after it
// from the same read, and the connection stops reading until Ingest says there is room;
// the sender then sees a full TCP window. Nothing read is ever discarded.
#include <deque>

#include "base/log.h"
#include "input/input.h"
#include "input/stream_listener.h"
#include "input/syslog_sink.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = StreamListener::TlsStream;

constexpr size_t kReadBytes = 64 * 1024;

using Shared = StreamShared;

template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(std::shared_ptr<Shared> shared, Stream stream, std::string peer)
      : shared_(std::move(shared)),
        stream_(std::move(stream)),
        framer_(shared_->options.framing, shared_->options.max_message_bytes),
        sink_(shared_->ctx.ingest, &shared_->source, &shared_->counters),
        buf_(kReadBytes) {
    sink_.set_peer(std::move(peer));
  }

  void Start() {
    HandshakeThen(
        stream_, this->shared_from_this(), shared_->source + ": " + sink_.peer(),
        [](Connection& c) { c.Read(); }, [](Connection& c) { c.Close(); });
  }

  // At input Stop: close the socket; whatever is held becomes an input_stopped loss.
  void Shutdown() override {
    if (closed_) return;
    uint64_t bytes = 0;
    for (const HeldMessage& m : held_) bytes += m.bytes.size();
    if (!held_.empty()) {
      RecordUnstoredAtStop(shared_->ctx.ingest, shared_->source, held_.size(), bytes,
                           held_.front().observed_ns, held_.back().observed_ns, &shared_->counters);
      held_.clear();
    }
    Close();
  }

 private:
  void Read() {
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(buf_), [self](const boost::system::error_code& ec,
                                                       size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (closed_) return;
    const int64_t now = shared_->ctx.clock->NowNanos();
    auto sink = [&](const syslog::Framer::Frame& f) { Handle(f.bytes, f.flags, now); };
    framer_.Feed(std::string_view(buf_.data(), n), sink);
    if (ec) {
      // EOF, reset, or a TLS stream cut without close_notify: what arrived is kept.
      if (ec != asio::error::eof && ec != asio::ssl::error::stream_truncated &&
          ec != asio::error::operation_aborted) {
        LogInfo(shared_->source + ": connection from " + sink_.peer() + " ended: " + ec.message());
      }
      framer_.Finish(sink);
      eof_ = true;
    }
    Continue();
  }

  void Handle(std::string_view bytes, uint16_t flags, int64_t observed) {
    if (held_.empty()) {
      const Status s = sink_.Store(bytes, flags, observed);
      if (s.ok()) return;
      NoteRefusal(s);
    }
    held_.push_back(HeldMessage{std::string(bytes), flags, observed});
  }

  void NoteRefusal(const Status& s) {
    if (s.code() == StatusCode::kResourceExhausted) return;
    if (!failed_) {
      LogError(shared_->source + ": cannot store messages from " + sink_.peer() + ": " +
               s.ToString() + "; reading stops (the sender is held back, nothing is dropped)");
    }
    failed_ = true;
  }

  // Stores held messages, then reads on, closes at EOF, or waits for room.
  void Continue() {
    while (!held_.empty()) {
      const HeldMessage& m = held_.front();
      const Status s = sink_.Store(m.bytes, m.flags, m.observed_ns);
      if (!s.ok()) {
        NoteRefusal(s);
        if (!failed_) WaitForRoom(m.bytes.size());
        return;  // a failed spool: stay paused; the sender's window stays full
      }
      held_.pop_front();
    }
    if (eof_) {
      Close();
    } else {
      Read();
    }
  }

  void WaitForRoom(size_t bytes) {
    shared_->counters.paused.fetch_add(1, std::memory_order_relaxed);
    auto self = this->shared_from_this();
    asio::io_context* io = shared_->ctx.io;
    shared_->ctx.ingest->OnRoom(bytes + 512, [self, io] {
      asio::post(*io, [self] {
        if (!self->closed_) self->Continue();
      });
    });
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
  syslog::Framer framer_;
  SyslogSink sink_;
  std::vector<char> buf_;
  std::deque<HeldMessage> held_;
  bool eof_ = false;
  bool closed_ = false;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Input> NewSyslogTcpInput(const Context& ctx, const SyslogOptions& options) {
  const bool tls = options.tls.has_value();
  return std::make_unique<StreamInput<Connection>>(ctx, options, tls ? "syslog TLS" : "syslog TCP",
                                                   tls ? "syslog:tls:" : "syslog:tcp:");
}

}  // namespace gapless::input
