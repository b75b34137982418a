#include <charconv>

#include "base/address.h"

namespace gapless {

Status ParseListenAddress(const std::string& text, std::string* address, uint16_t* port) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgumentError("listen address \"" + text + "\" " + why +
                                "; expected IP:port such as 127.0.0.1:6514 or [::1]:6514");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("has no port");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad("is IPv6 without brackets");
  }
  if (host.empty()) return bad("has no address");
  const std::string p = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value > 65535) {
    return bad("has a bad port");
  }
  for (char c : host) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == '.' || c == ':';
    if (!ok) return bad("is not a numeric IP address (names are not resolved)");
  }
  *address = host;
  *port = static_cast<uint16_t>(value);
  return Status::Ok();
}

}  // namespace gapless
