// Serves a Witness over HTTP/1.1 (http/server.h): POST <prefix>/add-checkpoint (C2SP
// tlog-witness), and GET / with the cosigner key. Plain HTTP: the protocol's security is
// in the signatures (the log's, checked here, and the cosignature returned); put a TLS
// proxy in front to hide the traffic. Every connection has a 30 s idle deadline and a
// 64 KiB body limit.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "http/server.h"
#include "witness/witness.h"

namespace gapless::witness {

// listen: "address:port" (port 0 picks one). The witness must outlive the server.
StatusOr<std::unique_ptr<http::Server>> StartServer(Witness* witness, const std::string& listen);

}  // namespace gapless::witness
