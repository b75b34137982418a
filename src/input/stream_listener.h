// Internal to src/input (includes Boost.Asio; only input .cc files include it): the accept
// loop and TLS set-up shared by the stream inputs (syslog TCP/TLS and RELP).
//
// Thread contract: the input's thread only (see input.h). The accept handler may run
// after the listener was stopped and destroyed (a reload does that); it looks only at a
// shared token until it knows the listener is still there.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/accept_pacer.h"
#include "base/log.h"
#include "base/status.h"
#include "input/input.h"
#include "input/syslog_sink.h"

namespace gapless::input {

// A connection the listener can shut down when its input stops.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Closes the socket; whatever the connection read but could not store becomes an
  // input_stopped loss record.
  virtual void Shutdown() = 0;
};

class StreamListener {
 public:
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  // Makes and starts a connection for an accepted socket. `tls` is null for plain TCP.
  using Factory = std::function<std::shared_ptr<ConnectionBase>(
      boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls, std::string peer)>;

  explicit StreamListener(boost::asio::io_context* io);
  ~StreamListener();
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  // Loads the TLS files (if any) and binds. `what` names the input in errors ("RELP").
  Status Bind(const std::string& what, const std::string& listen,
              const std::optional<TlsServerOptions>& tls);
  uint16_t port() const { return port_; }
  bool tls() const { return tls_ != nullptr; }
  // Accepts until Stop; connections beyond max_connections are closed unread.
  void Accept(std::string source, size_t max_connections, std::atomic<uint64_t>* accepted,
              Factory factory);
  // Stops accepting and shuts every open connection down.
  void Stop();

 private:
  void AcceptNext();
  void OnAccepted(boost::asio::ip::tcp::socket socket);

  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::string source_;
  size_t max_connections_ = 0;
  std::atomic<uint64_t>* accepted_ = nullptr;
  Factory factory_;
  std::vector<std::weak_ptr<ConnectionBase>> connections_;
  AcceptPacer pacer_{"stream input"};
  uint16_t port_ = 0;
};

// Starts a connection: for a TLS stream, runs the server handshake first (a failure is
// logged with `what` naming the input and peer, then on_fail runs); then on_ready runs.
// `self` keeps the connection alive meanwhile.
template <class Stream, class Self, class Ready, class Fail>
void HandshakeThen(Stream& stream, std::shared_ptr<Self> self, std::string what, Ready on_ready,
                   Fail on_fail) {
  if constexpr (std::is_same_v<Stream, StreamListener::TlsStream>) {
    stream.async_handshake(
        boost::asio::ssl::stream_base::server,
        [self, what = std::move(what), on_ready, on_fail](const boost::system::error_code& ec) {
          if (ec) {
            LogWarning(what + ": TLS handshake failed: " + ec.message());
            on_fail(*self);
            return;
          }
          on_ready(*self);
        });
  } else {
    on_ready(*self);
  }
}

// The factory for a connection class template instantiated for both streams and built as
// Connection<Stream>(shared, stream, peer), then Start()ed.
template <template <class> class Connection, class Shared>
StreamListener::Factory ConnectionFactory(std::shared_ptr<Shared> shared) {
  return [shared](boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls,
                  std::string peer) -> std::shared_ptr<ConnectionBase> {
    using TlsStream = StreamListener::TlsStream;
    if (tls != nullptr) {
      auto c = std::make_shared<Connection<TlsStream>>(shared, TlsStream(std::move(socket), *tls),
                                                       std::move(peer));
      c->Start();
      return c;
    }
    auto c = std::make_shared<Connection<boost::asio::ip::tcp::socket>>(shared, std::move(socket),
                                                                        std::move(peer));
    c->Start();
    return c;
  };
}

// What the connections of a syslog-options stream input share (syslog TCP/TLS, RELP).
struct StreamShared {
  Context ctx;
  SyslogOptions options;
  std::string source;
  Counters counters;
};

// A listening input whose connections are Connection<Stream>(shared, stream, peer).
template <template <class> class Connection>
class StreamInput final : public Input {
 public:
  // `what` names the input in errors ("RELP"); the default source id is prefix + port.
  StreamInput(const Context& ctx, const SyslogOptions& options, std::string what,
              std::string prefix)
      : shared_(std::make_shared<StreamShared>()),
        listener_(ctx.io),
        what_(std::move(what)),
        prefix_(std::move(prefix)) {
    shared_->ctx = ctx;
    shared_->options = options;
  }

  const std::string& name() const override { return shared_->source; }
  uint16_t port() const override { return listener_.port(); }
  Stats stats() const override { return shared_->counters.Snapshot(); }

  Status Start() override {
    RETURN_IF_ERROR(listener_.Bind(what_, shared_->options.listen, shared_->options.tls));
    shared_->source = shared_->options.name.empty() ? prefix_ + std::to_string(listener_.port())
                                                    : shared_->options.name;
    listener_.Accept(shared_->source, shared_->options.max_connections,
                     &shared_->counters.connections, ConnectionFactory<Connection>(shared_));
    return Status::Ok();
  }

  void Stop() override { listener_.Stop(); }

 private:
  std::shared_ptr<StreamShared> shared_;
  StreamListener listener_;
  const std::string what_;
  const std::string prefix_;
};

}  // namespace gapless::input
