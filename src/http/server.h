// A small HTTP/1.1 server for gapless's own endpoints (the witness, /metrics, /health,
// the console): one thread runs its io_context and calls the handler for each request, in
// order per connection. Every connection has an idle deadline, a header and a body limit,
// and the number of connections is capped — all before any handler (authentication) runs.
// Plain HTTP, or TLS when a certificate is given (the console off loopback): the witness
// protocol's security is in its signatures, and metrics carry no secrets.
//
// Thread contract: the handler runs on the server's thread and must not block for long;
// Start/Stop/port from one owner thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace gapless::http {

struct ServerRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/metrics", "/add-checkpoint?x", ...
  std::string body;
  std::string authorization;     // the Authorization header; empty: none
  bool client_verified = false;  // TLS with a client certificate the CA vouched for
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // the Allow header of a 405; empty: none
  std::vector<std::pair<std::string, std::string>> headers;  // more, as they are
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

struct ServerOptions {
  uint64_t max_body = 64 << 10;
  int idle_seconds = 30;
  std::string what = "http server";  // names the server in errors: "witness", "metrics"
  uint32_t header_limit = 16 << 10;
  int max_connections = 256;  // more are closed at once, before reading a byte
  // TLS (1.2 and 1.3) when tls_cert is set: the PEM chain's file and the private key's
  // PEM text (read by the caller through identity::ReadSecretFile). client_ca: client
  // certificates are asked for and verified against it (a request tells whether its
  // connection presented one: client_verified); empty: not asked for.
  std::string tls_cert;
  std::string tls_key_pem;
  std::string client_ca;
};

class Server {
 public:
  // listen: "address:port" (port 0 picks one).
  static StatusOr<std::unique_ptr<Server>> Start(const std::string& listen, Handler handler,
                                                 ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  uint16_t port() const;
  void Stop();  // idempotent

  struct Impl;

 private:
  Server() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gapless::http
