// For tests only: a raw TLS client of the collector, to speak the wire protocol by hand
// (protocol-level attacks, many epochs from one key) where a Sender would not.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <optional>
#include <string>
#include <utility>

#include "identity/identity.h"
#include "wire/tls_binding.h"
#include "wire/wire.h"

namespace gapless::transport {

// A raw TLS client for protocol-level attacks. Reads and writes throw on error.
class RawClient {
 public:
  RawClient(const std::string& ca, uint16_t port)
      : ctx_(boost::asio::ssl::context::tls_client), stream_(io_, ctx_) {
    ctx_.load_verify_file(ca);
    ctx_.set_verify_mode(boost::asio::ssl::verify_peer);
    stream_.lowest_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    stream_.handshake(boost::asio::ssl::stream_base::client);
  }
  std::pair<wire::MessageType, std::string> Read() {
    char h[wire::kFrameHeaderSize];
    boost::asio::read(stream_, boost::asio::buffer(h));
    auto fh = wire::DecodeFrameHeader(std::string_view(h, sizeof(h)), wire::kMaxFrameBytes);
    EXPECT_TRUE(fh.ok());
    std::string body(fh->body_bytes, '\0');
    boost::asio::read(stream_, boost::asio::buffer(body));
    return {fh->type, body};
  }
  void Write(wire::MessageType type, const std::string& body) {
    std::string f;
    wire::AppendFrame(&f, type, body);
    WriteRaw(f);
  }
  void WriteRaw(const std::string& bytes) {
    boost::asio::write(stream_, boost::asio::buffer(bytes));
  }
  wire::TlsBinding Binding() {
    wire::TlsBinding b{};
    EXPECT_TRUE(wire::ComputeTlsBinding(stream_.native_handle(), &b));
    return b;
  }
  // Fills in the server name and signs h the way an agent would on this connection:
  // over `challenge`'s nonce and this TLS session's binding (or another's, to forge).
  void Sign(wire::Hello* h, const identity::SigningKey& key, const std::string& challenge,
            std::optional<wire::TlsBinding> binding = std::nullopt) {
    if (h->server_name.empty()) h->server_name = "collector.test";
    h->signature = key.Sign(wire::SignedHelloBytes(wire::DecodeChallenge(challenge)->nonce,
                                                   binding ? *binding : Binding(), *h));
  }
  // Reads the challenge, answers it with a genuine hello of (agent_id, key, epoch) and
  // returns the collector's answer (kWelcome, or kError and its body).
  std::pair<wire::MessageType, std::string> SayHello(const std::string& agent_id,
                                                     const identity::SigningKey& key,
                                                     const spool::Epoch& epoch) {
    auto [type, challenge] = Read();
    EXPECT_EQ(type, wire::MessageType::kChallenge);
    wire::Hello h;
    h.agent_id = agent_id;
    h.public_key = key.public_key();
    h.epoch = epoch;
    Sign(&h, key, challenge);
    Write(wire::MessageType::kHello, wire::EncodeHello(h));
    return Read();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ssl::context ctx_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
};

}  // namespace gapless::transport
