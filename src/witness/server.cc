#include "witness/server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

#include "base/address.h"
#include "base/log.h"
#include "witness/protocol.h"

namespace gapless::witness {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

uint64_t NowSeconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Witness* witness) : stream_(std::move(socket)), witness_(witness) {}
  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBytes);
    stream_.expires_after(std::chrono::seconds(30));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->Answer();
                      });
  }

 private:
  void Answer() {
    const auto& req = parser_->get();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(bhttp::field::content_type, "text/plain; charset=utf-8");
    const std::string_view target(req.target().data(), req.target().size());
    const bool add = target.size() >= 15 && target.substr(target.size() - 15) == "/add-checkpoint";
    if (add && req.method() == bhttp::verb::post) {
      AddResult r = witness_->AddCheckpoint(req.body(), NowSeconds());
      res->result(static_cast<unsigned>(r.status));
      res->set(bhttp::field::content_type, r.content_type);
      res->body() = std::move(r.body);
    } else if (add) {
      res->result(bhttp::status::method_not_allowed);
      res->set(bhttp::field::allow, "POST");
      res->body() = "add-checkpoint takes POST\n";
    } else if (target == "/" && req.method() == bhttp::verb::get) {
      res->body() = witness_->cosigner_key() + "\n";
    } else {
      res->result(bhttp::status::not_found);
      res->body() = "this witness serves POST .../add-checkpoint\n";
    }
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, size_t) {
                         if (!ec && res->keep_alive()) self->Read();
                       });
  }

  beast::tcp_stream stream_;
  Witness* witness_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

}  // namespace

struct Server::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  Witness* witness = nullptr;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), witness)->Read();
      Accept();
    });
  }
};

StatusOr<std::unique_ptr<Server>> Server::Start(Witness* witness, const std::string& listen) {
  std::string address;
  uint16_t port = 0;
  RETURN_IF_ERROR(ParseListenAddress(listen, &address, &port));
  std::unique_ptr<Server> s(new Server);
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.witness = witness;
  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(address, ec), port);
  if (ec) return InvalidArgumentError("bad listen address " + listen);
  impl.acceptor.open(ep.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(ep, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("witness cannot listen on " + listen + ": " + ec.message());
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

}  // namespace gapless::witness
