// What the sender and the heartbeat connection share (internal to src/transport): the
// HELLO that answers a CHALLENGE, and the loop that reads frames off a connection.
#pragma once

#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "spool/spool_format.h"
#include "transport/sender.h"
#include "wire/tls_binding.h"
#include "wire/wire.h"

namespace gapless::transport {

// The HELLO frame (header included) answering a CHALLENGE body, signed by the agent's key
// over this connection's nonce, its TLS session (ssl) and the server name the collector's
// certificate was verified by. The enrollment token goes only when `with_token`.
inline StatusOr<std::string> HelloFrame(std::string_view challenge_body, const AgentIdentity& id,
                                        const spool::Epoch& epoch, SSL* ssl,
                                        const std::string& server_name, bool with_token) {
  ASSIGN_OR_RETURN(wire::Challenge ch, wire::DecodeChallenge(challenge_body));
  wire::TlsBinding binding{};
  if (!wire::ComputeTlsBinding(ssl, &binding)) {
    return InternalError("cannot compute the TLS binding of the hello (TLS exporter failed)");
  }
  wire::Hello h;
  h.agent_id = id.agent_id;
  h.public_key = id.key->public_key();
  h.epoch = epoch;
  if (with_token) h.enroll_token = id.enroll_token;
  h.server_name = server_name;
  h.signature = id.key->Sign(wire::SignedHelloBytes(ch.nonce, binding, h));
  std::string frame;
  wire::AppendFrame(&frame, wire::MessageType::kHello, wire::EncodeHello(h));
  return frame;
}

// Reads frames off c->stream for as long as c is self's current connection: each into
// c->header / c->body, then self->Handle(c, type); a read error or a bad header goes to
// self->Fail(c, why). Self and Conn are the owner and connection types of the sender and
// the heartbeat (same member names).
template <typename Self, typename Conn>
void ReadFrames(std::shared_ptr<Self> self, std::shared_ptr<Conn> c) {
  namespace asio = boost::asio;
  asio::async_read(
      c->stream, asio::buffer(c->header), [self, c](const boost::system::error_code& e, size_t) {
        if (self->conn != c) return;
        if (e) return self->Fail(c, "read: " + e.message());
        auto h = wire::DecodeFrameHeader(std::string_view(c->header.data(), c->header.size()),
                                         wire::kMaxFrameBytes);
        if (!h.ok()) return self->Fail(c, "from the collector: " + h.status().message());
        c->body.resize(h->body_bytes);
        asio::async_read(c->stream, asio::buffer(c->body),
                         [self, c, type = h->type](const boost::system::error_code& be, size_t) {
                           if (self->conn != c) return;
                           if (be) return self->Fail(c, "read: " + be.message());
                           self->Handle(c, type);
                           if (self->conn == c) ReadFrames(self, c);
                         });
      });
}

}  // namespace gapless::transport
