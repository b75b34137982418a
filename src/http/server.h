// A small HTTP/1.1 server for gapless's own endpoints (the witness, /metrics, /health):
// one thread runs its io_context and calls the handler for each request, in order per
// connection. Every connection has an idle deadline and a body limit; plain HTTP (put a
// TLS proxy in front where the traffic must be hidden — the witness protocol's security
// is in its signatures, and metrics carry no secrets).
//
// Thread contract: the handler runs on the server's thread and must not block for long;
// Start/Stop/port from one owner thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"

namespace gapless::http {

struct ServerRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/metrics", "/add-checkpoint?x", ...
  std::string body;
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // the Allow header of a 405; empty: none
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

struct ServerOptions {
  uint64_t max_body = 64 << 10;
  int idle_seconds = 30;
  std::string what = "http server";  // names the server in errors: "witness", "metrics"
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
