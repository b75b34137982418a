#include "http/server.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "base/accept_pacer.h"
#include "base/address.h"

namespace gapless::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct Shared {
  Handler handler;
  ServerOptions options;
  std::atomic<int> connections{0};
};

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, Shared* shared) : stream_(std::move(stream)), shared_(shared) {
    ++shared_->connections;
  }
  ~Session() { --shared_->connections; }

  void Start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(
          std::chrono::seconds(shared_->options.idle_seconds));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body);
    parser_->header_limit(shared_->options.header_limit);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(shared_->options.idle_seconds));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->Respond();
                      });
  }

  void Respond() {
    const auto& req = parser_->get();
    ServerRequest in{std::string(req.method_string()), std::string(req.target()), req.body(),
                     std::string(req[bhttp::field::authorization]), false};
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      SSL* ssl = stream_.native_handle();
      X509* peer = SSL_get_peer_certificate(ssl);
      in.client_verified = peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
      if (peer != nullptr) X509_free(peer);
    }
    ServerResponse out = shared_->handler(in);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->result(static_cast<unsigned>(out.status));
    res->set(bhttp::field::content_type, out.content_type);
    if (!out.allow.empty()) res->set(bhttp::field::allow, out.allow);
    for (const auto& [name, value] : out.headers) res->set(name, value);
    res->body() = std::move(out.body);
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                         if (!ec && res->keep_alive()) self->Read();
                       });
  }

  Stream stream_;
  Shared* shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

StatusOr<std::unique_ptr<asio::ssl::context>> MakeTls(const ServerOptions& o) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  beast::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert, ec);
  if (ec)
    return InvalidArgumentError(o.what + ": TLS certificate " + o.tls_cert + ": " + ec.message());
  ctx->use_private_key(asio::buffer(o.tls_key_pem), asio::ssl::context::pem, ec);
  if (ec) return InvalidArgumentError(o.what + ": TLS private key: " + ec.message());
  if (!o.client_ca.empty()) {
    ctx->load_verify_file(o.client_ca, ec);
    if (ec)
      return InvalidArgumentError(o.what + ": client CA " + o.client_ca + ": " + ec.message());
    // Asked for, not required: a request without one is judged by the handler (a token).
    ctx->set_verify_mode(asio::ssl::verify_peer);
    ctx->set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
  }
  return ctx;
}

}  // namespace

struct Server::Impl {
  // Declared before the io_context: sessions still queued in it when it is destroyed
  // count themselves off `shared` and use `tls`.
  Shared shared;
  std::unique_ptr<asio::ssl::context> tls;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  AcceptPacer pacer{"http server"};

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // At the descriptor limit (EMFILE) accept fails at once: wait before the next.
        auto timer = std::make_shared<asio::steady_timer>(ioc, pacer.Failed(ec.message()));
        timer->async_wait([this, timer](const beast::error_code& e) {
          if (!e && acceptor.is_open()) Accept();
        });
        return;
      }
      pacer.Succeeded();
      if (shared.connections.load() >= shared.options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the cap: closed before a byte is read
      } else if (tls) {
        std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *tls), &shared)->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), &shared)
            ->Start();
      }
      Accept();
    });
  }
};

StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& listen, Handler handler,
                                                ServerOptions options) {
  std::string address;
  uint16_t port = 0;
  RETURN_IF_ERROR(ParseListenAddress(listen, &address, &port));
  std::unique_ptr<Server> s(new Server);
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.shared.handler = std::move(handler);
  impl.shared.options = std::move(options);
  if (!impl.shared.options.tls_cert.empty()) {
    auto tls = MakeTls(impl.shared.options);
    OPENSSL_cleanse(impl.shared.options.tls_key_pem.data(), impl.shared.options.tls_key_pem.size());
    impl.shared.options.tls_key_pem.clear();
    if (!tls.ok()) return tls.status();
    impl.tls = std::move(*tls);
  }
  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(address, ec), port);
  if (ec) return InvalidArgumentError("bad listen address " + listen);
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError(impl.shared.options.what + " cannot listen on " + listen + ": " +
                            ec.message());
  }
  impl.Accept();
  impl.thread = std::thread([&impl] { impl.ioc.run(); });
  return s;
}

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->ioc.stop();
  impl_->thread.join();
}

Server::~Server() { Stop(); }

}  // namespace gapless::http
