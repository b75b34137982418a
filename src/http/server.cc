#include "http/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Handler* handler, const ServerOptions* options)
      : stream_(std::move(socket)), handler_(handler), options_(options) {}
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_->max_body);
    stream_.expires_after(std::chrono::seconds(options_->idle_seconds));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->Respond();
                      });
  }

 private:
  void Respond() {
    const auto& req = parser_->get();
    ServerRequest in{std::string(req.method_string()), std::string(req.target()), req.body()};
    ServerResponse out = (*handler_)(in);
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->result(static_cast<unsigned>(out.status));
    res->set(bhttp::field::content_type, out.content_type);
    if (!out.allow.empty()) res->set(bhttp::field::allow, out.allow);
    res->body() = std::move(out.body);
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, size_t) {
                         if (!ec && res->keep_alive()) self->Read();
                       });
  }

  beast::tcp_stream stream_;
  const Handler* handler_;
  const ServerOptions* options_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

}  // namespace

struct Server::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  Handler handler;
  ServerOptions options;
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
      std::make_shared<Session>(std::move(socket), &handler, &options)->Read();
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
  impl.handler = std::move(handler);
  impl.options = std::move(options);
  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(address, ec), port);
  if (ec) return InvalidArgumentError("bad listen address " + listen);
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError(impl.options.what + " cannot listen on " + listen + ": " +
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
