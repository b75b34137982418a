#include "transport/heartbeat.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "base/address.h"
#include "base/log.h"
#include "transport/frames.h"

namespace gapless::transport {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// Everything here belongs to the heartbeat thread, except the atomics.
struct Heartbeater::Impl : std::enable_shared_from_this<Heartbeater::Impl> {
  struct Conn {
    Conn(asio::io_context& io, ssl::context& tls) : stream(io, tls) {}
    ssl::stream<tcp::socket> stream;
    std::array<char, wire::kFrameHeaderSize> header{};
    std::string body;
    std::deque<std::string> out;
    bool writing = false;
    bool welcomed = false;
    bool challenged = false;
  };

  DestinationOptions opt;
  AgentIdentity id;
  spool::Epoch epoch{};
  std::function<wire::Heartbeat()> snapshot;
  int64_t interval_ms = 5000;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_guard;
  std::thread thread;
  std::unique_ptr<ssl::context> tls;
  std::shared_ptr<Conn> conn;
  asio::steady_timer beat_timer{io};
  int64_t connect_started_ms = 0;
  bool stopping = false;
  std::string last_error;
  std::atomic<uint64_t> sent{0}, connects{0}, failures{0};

  env::Clock* clock = nullptr;  // injected (Start)
  int64_t NowMs() const { return clock->MonotonicNanos() / 1'000'000; }

  void Fail(const std::shared_ptr<Conn>& c, const std::string& why) {
    if (conn != c || c == nullptr) return;
    ++failures;
    if (why != last_error) LogWarning("heartbeat → " + opt.address + ": " + why);
    last_error = why;
    boost::system::error_code ignored;
    c->stream.lowest_layer().close(ignored);
    conn = nullptr;  // the beat timer reconnects
  }

  std::string BeatBody() {
    wire::Heartbeat hb = snapshot();
    hb.to = opt.name;
    return wire::EncodeHeartbeat(hb);
  }

  void SendBeat() {
    std::string frame;
    wire::AppendFrame(&frame, wire::MessageType::kHeartbeat, BeatBody());
    Send(conn, std::move(frame));
    ++sent;
  }

  void Close() {
    if (conn != nullptr) {
      boost::system::error_code ignored;
      conn->stream.lowest_layer().close(ignored);
      conn = nullptr;
    }
    work_guard.reset();
  }

  // Stop: closes once the last beat is written (or failed), or at the deadline.
  void CloseWhenFlushed(int64_t deadline_ms) {
    if (conn == nullptr || conn->out.empty() || NowMs() >= deadline_ms) return Close();
    auto self = shared_from_this();
    beat_timer.expires_after(std::chrono::milliseconds(5));
    beat_timer.async_wait([self, deadline_ms](const boost::system::error_code&) {
      self->CloseWhenFlushed(deadline_ms);
    });
  }

  // Every interval: (re)connect if needed, else send one heartbeat. A connection that
  // has not been welcomed within the connect timeout is dropped.
  void Beat() {
    if (stopping) return;
    if (conn == nullptr) {
      Connect();
    } else if (conn->welcomed) {
      SendBeat();
    } else if (NowMs() - connect_started_ms > opt.connect_timeout_ms) {
      Fail(conn, "connect/handshake timed out");
    }
    auto self = shared_from_this();
    beat_timer.expires_after(std::chrono::milliseconds(interval_ms));
    beat_timer.async_wait([self](const boost::system::error_code& e) {
      if (!e) self->Beat();
    });
  }

  void Connect() {
    auto c = std::make_shared<Conn>(io, *tls);
    conn = c;
    connect_started_ms = NowMs();
    std::string address;
    uint16_t port = 0;
    boost::system::error_code ec;
    Status s = ParseListenAddress(opt.address, &address, &port);
    const auto ip = s.ok() ? asio::ip::make_address(address, ec) : asio::ip::address();
    if (!s.ok() || ec) return Fail(c, "bad address " + opt.address);
    auto self = shared_from_this();
    c->stream.lowest_layer().async_connect(
        tcp::endpoint(ip, port), [self, c](const boost::system::error_code& e) {
          if (self->conn != c) return;
          if (e) return self->Fail(c, "connect: " + e.message());
          SSL_set_tlsext_host_name(c->stream.native_handle(), self->opt.server_name.c_str());
          c->stream.set_verify_callback(ssl::host_name_verification(self->opt.server_name));
          c->stream.async_handshake(ssl::stream_base::client,
                                    [self, c](const boost::system::error_code& he) {
                                      if (self->conn != c) return;
                                      if (he)
                                        return self->Fail(c, "TLS handshake: " + he.message());
                                      ReadFrames(self, c);
                                    });
        });
  }

  void Send(const std::shared_ptr<Conn>& c, std::string frame) {
    if (c->out.size() > 4) return;  // the collector is not reading; the beat is skipped
    c->out.push_back(std::move(frame));
    if (!c->writing) WriteNext(c);
  }

  void WriteNext(const std::shared_ptr<Conn>& c) {
    if (c->out.empty() || conn != c) {
      c->writing = false;
      return;
    }
    c->writing = true;
    auto self = shared_from_this();
    asio::async_write(c->stream, asio::buffer(c->out.front()),
                      [self, c](const boost::system::error_code& e, size_t) {
                        if (self->conn != c) return;
                        if (e) return self->Fail(c, "write: " + e.message());
                        c->out.pop_front();
                        self->WriteNext(c);
                      });
  }

  void Handle(const std::shared_ptr<Conn>& c, wire::MessageType type) {
    switch (type) {
      case wire::MessageType::kChallenge: {
        if (c->challenged) return Fail(c, "a second challenge on one connection: refused");
        c->challenged = true;
        // The heartbeat never enrolls: the token goes only with the sender's hello.
        auto frame = HelloFrame(c->body, id, epoch, c->stream.native_handle(), opt.server_name,
                                /*with_token=*/false);
        if (!frame.ok()) return Fail(c, frame.status().message());
        return Send(c, std::move(*frame));
      }
      case wire::MessageType::kWelcome: {
        c->welcomed = true;
        ++connects;
        if (!last_error.empty()) LogInfo("heartbeat → " + opt.address + ": connected again");
        last_error.clear();
        std::string frame;  // one at once, so the collector knows at once
        wire::AppendFrame(&frame, wire::MessageType::kHeartbeat, BeatBody());
        Send(c, std::move(frame));
        ++sent;
        return;
      }
      case wire::MessageType::kAck:
        return;  // for senders; dropped
      case wire::MessageType::kError: {
        auto e = wire::DecodeError(c->body);
        return Fail(c, "collector closed the connection: " +
                           (e.ok() ? std::string(wire::ErrorCodeName(e->code)) + ": " + e->message
                                   : std::string("malformed error")));
      }
      default:
        return Fail(c, "unexpected message from the collector");
    }
  }
};

StatusOr<std::unique_ptr<Heartbeater>> Heartbeater::Start(const DestinationOptions& destination,
                                                          AgentIdentity identity,
                                                          const spool::Epoch& epoch,
                                                          std::function<wire::Heartbeat()> snapshot,
                                                          int64_t interval_ms, env::Clock* clock) {
  if (identity.key == nullptr) return InvalidArgumentError("heartbeat: no agent key");
  auto impl = std::make_shared<Impl>();
  impl->clock = clock != nullptr ? clock : env::Env::Posix()->clock();
  impl->opt = destination;
  impl->id = std::move(identity);
  impl->epoch = epoch;
  impl->snapshot = std::move(snapshot);
  impl->interval_ms = interval_ms;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  ctx->load_verify_file(destination.ca_file, ec);
  if (ec) {
    return InvalidArgumentError("heartbeat to " + destination.name + ": cannot load ca_file " +
                                destination.ca_file + ": " + ec.message());
  }
  ctx->set_verify_mode(ssl::verify_peer);
  impl->tls = std::move(ctx);
  impl->work_guard.emplace(impl->io.get_executor());
  asio::post(impl->io, [impl] { impl->Beat(); });
  impl->thread = std::thread([impl] { impl->io.run(); });
  std::unique_ptr<Heartbeater> h(new Heartbeater());
  h->impl_ = std::move(impl);
  return h;
}

Heartbeater::~Heartbeater() { Stop(); }

void Heartbeater::Stop(int64_t last_beat_ms) {
  if (impl_ == nullptr || !impl_->thread.joinable()) return;
  auto impl = impl_;
  asio::post(impl->io, [impl, last_beat_ms] {
    impl->stopping = true;
    impl->beat_timer.cancel();
    if (last_beat_ms > 0 && impl->conn != nullptr && impl->conn->welcomed) {
      impl->SendBeat();
      impl->CloseWhenFlushed(impl->NowMs() + last_beat_ms);
    } else {
      impl->Close();
    }
  });
  impl->thread.join();
}

HeartbeatStats Heartbeater::stats() const {
  return {impl_->sent.load(), impl_->connects.load(), impl_->failures.load()};
}

}  // namespace gapless::transport
