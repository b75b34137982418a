#include "input/stream_listener.h"

#include <openssl/crypto.h>

#include "base/log.h"
#include "identity/identity.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const TlsServerOptions& t) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  // No TLS 1.3 session tickets: a syslog client never reads, so tickets sit unread in
  // its receive buffer and its close() becomes a reset that throws away everything
  // still in its send buffer. Seen with syslog-ng's loggen: 75% of messages lost.
  SSL_CTX_set_num_tickets(ctx->native_handle(), 0);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_TICKET);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(t.cert_file, ec);
  if (ec) return InvalidArgumentError("TLS certificate " + t.cert_file + ": " + ec.message());
  // The key is read through the owner-only check, like every other secret.
  auto key = identity::ReadSecretFile(t.key_file);
  if (!key.ok()) {
    return Status(key.status().code(), "TLS private key: " + key.status().message());
  }
  ctx->use_private_key(asio::buffer(*key), asio::ssl::context::pem, ec);
  OPENSSL_cleanse(key->data(), key->size());
  if (ec) return InvalidArgumentError("TLS private key " + t.key_file + ": " + ec.message());
  if (!t.ca_file.empty()) {
    ctx->load_verify_file(t.ca_file, ec);
    if (ec) return InvalidArgumentError("TLS CA file " + t.ca_file + ": " + ec.message());
    ctx->set_verify_mode(asio::ssl::verify_peer |
                         (t.require_client_cert ? asio::ssl::verify_fail_if_no_peer_cert : 0));
  }
  return ctx;
}

}  // namespace

StreamListener::StreamListener(asio::io_context* io) : acceptor_(*io) {}

StreamListener::~StreamListener() { *stopped_ = true; }

Status StreamListener::Bind(const std::string& what, const std::string& listen,
                            const std::optional<TlsServerOptions>& tls) {
  std::string address;
  RETURN_IF_ERROR(ParseListenAddress(listen, &address, &port_));
  if (tls) {
    ASSIGN_OR_RETURN(tls_, MakeTlsContext(*tls));
  }
  boost::system::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(address, ec), port_);
  if (!ec) acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError(what + " input cannot listen on " + listen + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return Status::Ok();
}

void StreamListener::Accept(std::string source, size_t max_connections,
                            std::atomic<uint64_t>* accepted, Factory factory) {
  source_ = std::move(source);
  max_connections_ = max_connections;
  accepted_ = accepted;
  factory_ = std::move(factory);
  AcceptNext();
}

void StreamListener::AcceptNext() {
  acceptor_.async_accept(
      [this, stopped = stopped_](const boost::system::error_code& ec, tcp::socket socket) {
        if (*stopped) return;
        if (ec) {
          // At the descriptor limit (EMFILE) accept fails at once: wait before the next.
          auto timer = std::make_shared<boost::asio::steady_timer>(acceptor_.get_executor(),
                                                                   pacer_.Failed(ec.message()));
          timer->async_wait([this, stopped, timer](const boost::system::error_code& e) {
            if (!e && !*stopped) AcceptNext();
          });
          return;
        }
        pacer_.Succeeded();
        OnAccepted(std::move(socket));
        AcceptNext();
      });
}

void StreamListener::OnAccepted(tcp::socket socket) {
  std::erase_if(connections_, [](const auto& w) { return w.expired(); });
  boost::system::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  std::string peer =
      ec ? "unknown" : remote.address().to_string() + ":" + std::to_string(remote.port());
  if (connections_.size() >= max_connections_) {
    LogWarning(source_ + ": refusing " + peer + ": max_connections (" +
               std::to_string(max_connections_) + ") reached");
    return;  // the socket closes; the sender retries (nothing was read)
  }
  accepted_->fetch_add(1, std::memory_order_relaxed);
  connections_.push_back(factory_(std::move(socket), tls_.get(), std::move(peer)));
}

void StreamListener::Stop() {
  *stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& weak : connections_) {
    if (auto c = weak.lock()) c->Shutdown();
  }
  connections_.clear();
}

}  // namespace gapless::input
