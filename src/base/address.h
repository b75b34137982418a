// Network address text, shared by the inputs, the collector and the senders.
// Thread contract: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace gapless {

// "127.0.0.1:6514", "[::1]:6514", "0.0.0.0:514" → address and port. Names are refused:
// an address that silently resolves elsewhere after a DNS change is not what a security
// pipeline should listen on or send to.
Status ParseListenAddress(const std::string& text, std::string* address, uint16_t* port);

}  // namespace gapless
