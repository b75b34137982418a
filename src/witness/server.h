// Serves a Witness over HTTP/1.1: POST <prefix>/add-checkpoint (C2SP tlog-witness), and
// GET / with the cosigner key. Plain HTTP: the protocol's security is in the signatures
// (the log's, checked here, and the cosignature returned); put a TLS proxy in front to
// hide the traffic. One thread runs the io_context; every connection has a 30 s idle
// deadline and a 64 KiB body limit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "witness/witness.h"

namespace gapless::witness {

class Server {
 public:
  // listen: "address:port" (port 0 picks one).
  static StatusOr<std::unique_ptr<Server>> Start(Witness* witness, const std::string& listen);
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

}  // namespace gapless::witness
