#include "witness/server.h"

#include <chrono>

#include "witness/protocol.h"

namespace gapless::witness {
namespace {

uint64_t NowSeconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

http::ServerResponse Handle(Witness* witness, const http::ServerRequest& req) {
  const std::string_view target = req.target;
  const bool add = target.size() >= 15 && target.substr(target.size() - 15) == "/add-checkpoint";
  http::ServerResponse res;
  if (add && req.method == "POST") {
    AddResult r = witness->AddCheckpoint(req.body, NowSeconds());
    res.status = r.status;
    res.content_type = r.content_type;
    res.body = std::move(r.body);
  } else if (add) {
    res.status = 405;
    res.allow = "POST";
    res.body = "add-checkpoint takes POST\n";
  } else if (target == "/" && req.method == "GET") {
    res.body = witness->cosigner_key() + "\n";
  } else {
    res.status = 404;
    res.body = "this witness serves POST .../add-checkpoint\n";
  }
  return res;
}

}  // namespace

StatusOr<std::unique_ptr<http::Server>> StartServer(Witness* witness, const std::string& listen) {
  http::ServerOptions o;
  o.max_body = kMaxRequestBytes;
  o.what = "witness";
  return http::Server::Start(
      listen, [witness](const http::ServerRequest& r) { return Handle(witness, r); }, o);
}

}  // namespace gapless::witness
