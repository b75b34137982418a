// The TLS binding of a hello (docs/protocol.md, "Handshake"): the exporter value of the
// connection's TLS session, which the agent signs and the collector recomputes. Kept out
// of wire.h so that the parsers (and their fuzzers) need no OpenSSL.
#pragma once

#include <openssl/ssl.h>

#include "wire/wire.h"

namespace gapless::wire {

// False if the session has no exporter yet (before the handshake finished).
inline bool ComputeTlsBinding(SSL* ssl, TlsBinding* out) {
  return SSL_export_keying_material(ssl, out->data(), out->size(), kTlsBindingLabel.data(),
                                    kTlsBindingLabel.size(), nullptr, 0, 0) == 1;
}

}  // namespace gapless::wire
