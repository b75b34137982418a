// A small HTTP/1.1 client (Boost.Beast) for the requests gapless makes: witnesses'
// add-checkpoint, and alert webhooks. One request per connection, plain or TLS (peer
// verified against the system's CAs or a given CA file, host name checked), every step
// under one deadline. Thread-safe: each call owns its own io_context.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace gapless::http {

struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target = "/";  // path and query
};
// http://host[:port][/path] or https://...; kInvalidArgument naming what is wrong.
StatusOr<Url> ParseUrl(std::string_view url);

struct ClientOptions {
  int64_t timeout_ms = 10000;  // for the whole request: connect, TLS, send, answer
  std::string ca_file;         // PEM; empty: the system's CAs
  size_t max_body = 1 << 20;   // a longer answer is an error
};

struct Request {
  std::string method = "POST";
  std::string url;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Response {
  int status = 0;
  std::string content_type;
  std::string body;
};

// kInvalidArgument for a bad URL; kUnavailable when no answer came (resolve, connect,
// TLS, timeout, a malformed answer): worth retrying. Any HTTP status is a Response.
StatusOr<Response> Send(const Request& request, const ClientOptions& options = {});
// Send of a GET with no body.
StatusOr<Response> Get(const std::string& url, const ClientOptions& options = {});

}  // namespace gapless::http
