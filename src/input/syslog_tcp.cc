// Syslog over TCP and TLS (RFC 6587 framing, RFC 5425 TLS transport).
//
// One Connection per accepted socket, owned by shared_ptrs held by its pending handlers.
// Backpressure: a message the full spool refuses is kept (held_) with everything after it
// from the same read, and the connection stops reading until Ingest says there is room;
// the sender then sees a full TCP window. Nothing read is ever discarded.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <set>

#include "base/log.h"
#include "input/input.h"
#include "input/syslog_sink.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;

constexpr size_t kReadBytes = 64 * 1024;

struct Shared {
  Context ctx;
  SyslogOptions options;
  std::string source;
  Counters counters;
  bool stopping = false;
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void Shutdown() = 0;
};

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
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      auto self = this->shared_from_this();
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self](const boost::system::error_code& ec) {
                                if (ec) {
                                  LogWarning(self->shared_->source + ": TLS handshake with " +
                                             self->sink_.peer() + " failed: " + ec.message());
                                  self->Close();
                                  return;
                                }
                                self->Read();
                              });
    } else {
      Read();
    }
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

class SyslogTcpInput final : public Input {
 public:
  SyslogTcpInput(const Context& ctx, const SyslogOptions& options)
      : shared_(std::make_shared<Shared>()), acceptor_(*ctx.io) {
    shared_->ctx = ctx;
    shared_->options = options;
  }

  ~SyslogTcpInput() override { shared_->stopping = true; }

  const std::string& name() const override { return shared_->source; }
  uint16_t port() const override { return port_; }
  Stats stats() const override { return shared_->counters.Snapshot(); }

  Status Start() override {
    std::string address;
    RETURN_IF_ERROR(ParseListenAddress(shared_->options.listen, &address, &port_));
    const bool tls = shared_->options.tls.has_value();
    if (tls) RETURN_IF_ERROR(SetUpTls());
    boost::system::error_code ec;
    const tcp::endpoint endpoint(asio::ip::make_address(address, ec), port_);
    if (!ec) acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("syslog " + std::string(tls ? "TLS" : "TCP") +
                              " input cannot listen on " + shared_->options.listen + ": " +
                              ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    shared_->source = shared_->options.name.empty()
                          ? std::string(tls ? "syslog:tls:" : "syslog:tcp:") + std::to_string(port_)
                          : shared_->options.name;
    Accept();
    return Status::Ok();
  }

  void Stop() override {
    shared_->stopping = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& weak : connections_) {
      if (auto c = weak.lock()) c->Shutdown();
    }
    connections_.clear();
  }

 private:
  Status SetUpTls() {
    const TlsServerOptions& t = *shared_->options.tls;
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
    // No TLS 1.3 session tickets: a syslog client never reads, so tickets sit unread in
    // its receive buffer and its close() becomes a reset that throws away everything
    // still in its send buffer. Seen with syslog-ng's loggen: 75% of messages lost.
    SSL_CTX_set_num_tickets(tls_->native_handle(), 0);
    SSL_CTX_set_options(tls_->native_handle(), SSL_OP_NO_TICKET);
    boost::system::error_code ec;
    tls_->use_certificate_chain_file(t.cert_file, ec);
    if (ec) return InvalidArgumentError("TLS certificate " + t.cert_file + ": " + ec.message());
    tls_->use_private_key_file(t.key_file, asio::ssl::context::pem, ec);
    if (ec) return InvalidArgumentError("TLS private key " + t.key_file + ": " + ec.message());
    if (!t.ca_file.empty()) {
      tls_->load_verify_file(t.ca_file, ec);
      if (ec) return InvalidArgumentError("TLS CA file " + t.ca_file + ": " + ec.message());
      tls_->set_verify_mode(asio::ssl::verify_peer |
                            (t.require_client_cert ? asio::ssl::verify_fail_if_no_peer_cert : 0));
    }
    return Status::Ok();
  }

  void Accept() {
    // The handler may run after this input was stopped and destroyed (a reload does
    // that): it looks only at the shared state until it knows the input is still there.
    acceptor_.async_accept(
        [this, shared = shared_](const boost::system::error_code& ec, tcp::socket socket) {
          if (shared->stopping) return;
          if (ec) {
            LogWarning(shared_->source + ": accept failed: " + ec.message());
          } else {
            OnAccepted(std::move(socket));
          }
          Accept();
        });
  }

  void OnAccepted(tcp::socket socket) {
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    boost::system::error_code ec;
    const tcp::endpoint remote = socket.remote_endpoint(ec);
    std::string peer =
        ec ? "unknown" : remote.address().to_string() + ":" + std::to_string(remote.port());
    if (connections_.size() >= shared_->options.max_connections) {
      LogWarning(shared_->source + ": refusing " + peer + ": max_connections (" +
                 std::to_string(shared_->options.max_connections) + ") reached");
      return;  // socket closes; the sender retries (nothing was read)
    }
    shared_->counters.connections.fetch_add(1, std::memory_order_relaxed);
    if (tls_) {
      auto c = std::make_shared<Connection<TlsStream>>(shared_, TlsStream(std::move(socket), *tls_),
                                                       std::move(peer));
      connections_.push_back(c);
      c->Start();
    } else {
      auto c =
          std::make_shared<Connection<tcp::socket>>(shared_, std::move(socket), std::move(peer));
      connections_.push_back(c);
      c->Start();
    }
  }

  std::shared_ptr<Shared> shared_;
  tcp::acceptor acceptor_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::vector<std::weak_ptr<ConnectionBase>> connections_;  // input thread only
  uint16_t port_ = 0;
};

}  // namespace

std::unique_ptr<Input> NewSyslogTcpInput(const Context& ctx, const SyslogOptions& options) {
  return std::make_unique<SyslogTcpInput>(ctx, options);
}

}  // namespace gapless::input
