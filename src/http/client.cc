#include "http/client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <optional>

namespace gapless::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Runs one asynchronous operation to completion on ioc; the stream's expiry bounds it.
template <typename Start>
boost::system::error_code Run(asio::io_context& ioc, Start&& start) {
  boost::system::error_code result = asio::error::would_block;
  start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

Status Unavailable(const std::string& what, const boost::system::error_code& ec) {
  return UnavailableError(what + ": " + ec.message());
}

template <typename Stream>
StatusOr<Response> Exchange(asio::io_context& ioc, Stream& stream, const Request& request,
                            const Url& url, const ClientOptions& options) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, url.target, 11};
  req.method_string(request.method);
  req.set(bhttp::field::host, url.host);
  req.set(bhttp::field::user_agent, "gapless");
  if (!request.content_type.empty()) req.set(bhttp::field::content_type, request.content_type);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();
  if (auto ec = Run(ioc, [&](auto h) { bhttp::async_write(stream, req, h); })) {
    return Unavailable("sending the request to " + url.host, ec);
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options.max_body);
  if (auto ec = Run(ioc, [&](auto h) { bhttp::async_read(stream, buffer, parser, h); })) {
    return Unavailable("reading the answer of " + url.host, ec);
  }
  Response r;
  r.status = static_cast<int>(parser.get().result_int());
  r.content_type = std::string(parser.get()[bhttp::field::content_type]);
  r.body = std::move(parser.get().body());
  return r;
}

}  // namespace

StatusOr<Url> ParseUrl(std::string_view s) {
  Url u;
  if (s.rfind("https://", 0) == 0) {
    u.tls = true;
    s.remove_prefix(8);
  } else if (s.rfind("http://", 0) == 0) {
    s.remove_prefix(7);
  } else {
    return InvalidArgumentError("URL must start with http:// or https://");
  }
  const size_t slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
  u.port = u.tls ? 443 : 80;
  std::string_view host = authority;
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("URL has an unclosed [");
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority[0] != ':') {
      return InvalidArgumentError("URL has text after ]");
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    authority.remove_prefix(colon);
  } else {
    authority = {};
  }
  if (!authority.empty()) {  // ":port"
    const std::string_view port = authority.substr(1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgumentError("URL has a bad port \"" + std::string(port) + "\"");
    }
    u.port = static_cast<uint16_t>(value);
  }
  if (host.empty()) return InvalidArgumentError("URL has no host");
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '@') {
      return InvalidArgumentError("URL has a bad host");
    }
  }
  u.host = std::string(host);
  return u;
}

StatusOr<Response> Send(const Request& request, const ClientOptions& options) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(request.url));
  asio::io_context ioc;
  beast::tcp_stream tcp_stream(ioc);
  tcp_stream.expires_after(std::chrono::milliseconds(options.timeout_ms));
  tcp::resolver resolver(ioc);
  tcp::resolver::results_type endpoints;
  {
    boost::system::error_code ec;
    endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
    if (ec) return Unavailable("resolving " + url.host, ec);
  }
  if (auto ec = Run(ioc, [&](auto h) { tcp_stream.async_connect(endpoints, h); })) {
    return Unavailable("connecting to " + url.host + ":" + std::to_string(url.port), ec);
  }
  if (!url.tls) return Exchange(ioc, tcp_stream, request, url, options);

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  if (options.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(options.ca_file, ec);
  }
  if (ec) return InvalidArgumentError("loading CA certificates: " + ec.message());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp_stream), ctx);
  tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
  if (!SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str())) {
    return InvalidArgumentError("cannot set the TLS server name " + url.host);
  }
  if (auto hec =
          Run(ioc, [&](auto h) { tls.async_handshake(asio::ssl::stream_base::client, h); })) {
    return Unavailable("TLS with " + url.host, hec);
  }
  return Exchange(ioc, tls, request, url, options);
}

StatusOr<Response> Get(const std::string& url, const ClientOptions& options) {
  Request r;
  r.method = "GET";
  r.url = url;
  return Send(r, options);
}

}  // namespace gapless::http
