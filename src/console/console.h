// The console (docs/console.md): one web page that shows whether every log arrived, and
// the evidence — served by the collector on console_listen. Read-only.
//
// Pages are static files embedded in the binary (assets/, no build step that needs the
// network); the data comes from a JSON API under /api/ that is the same code as the CLI:
// /api/status is `gapless status --json`, /api/gaps `gapless gaps --json`, /api/outputs
// `gapless outputs --json` (report/), proofs are proof::Prover's documents, search is
// query::Run. Every /api/ request is authenticated when the console asks for it (a bearer
// token, or a TLS client certificate a CA vouched for); the pages carry no data and are
// served to anyone who can reach the port.
//
// Bad parameters: 400 with a message naming the parameter and what to give, never a
// partial answer. Limits: every parameter ≤ 1 KiB, at most 16 of them; pages ≤ 1,000 rows.
//
// Thread contract: Handle from one thread at a time (the HTTP server's).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "http/server.h"
#include "ledger/ledger.h"
#include "monitor/volume.h"

namespace gapless::proof {
class Prover;
}

namespace gapless::console {

struct ConsoleOptions {
  std::string data_dir;
  std::string alert_journal;  // the collector's alert journal
  // Required on every /api/ request when not empty: "Authorization: Bearer <token>".
  std::string token;
  // A request over TLS with a client certificate the CA vouched for needs no token.
  bool accept_client_cert = false;
  // Whether /api/ is open without a token (the console listens on loopback, no token).
  bool open = true;
  // The monitors' thresholds, for the sources' baseline band and the red/amber judgment.
  monitor::BaselineOptions baseline;
  double volume_drop_ratio = 0.2;
  int64_t agent_silent_s = 60;
};

class Console {
 public:
  explicit Console(ConsoleOptions o);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  http::ServerResponse Handle(const http::ServerRequest& r);

 private:
  using Params = std::map<std::string, std::string>;
  http::ServerResponse Api(const std::string& path, const Params& p);
  StatusOr<const ledger::Ledger*> OpenLedger();
  http::ServerResponse Overview(const Params& p);
  http::ServerResponse Stream(const Params& p);
  http::ServerResponse Sources(const Params& p);
  http::ServerResponse Alerts(const Params& p);
  http::ServerResponse Search(const Params& p);
  http::ServerResponse Proof(const std::string& kind, const Params& p);

  ConsoleOptions o_;
  std::unique_ptr<ledger::Ledger> ledger_;  // read-only, opened on first use
  std::unique_ptr<proof::Prover> prover_;
};

// Splits a request target into its path and its query parameters (percent-decoded,
// '+' as space). kInvalidArgument for a malformed escape, a repeated parameter, more than
// 16 parameters or a value over 1 KiB.
Status ParseTarget(std::string_view target, std::string* path,
                   std::map<std::string, std::string>* params);

// Whether a listen address ("IP:port") is on loopback (127.0.0.0/8, ::1).
bool IsLoopbackListen(const std::string& listen);

// The server: plain HTTP on loopback, TLS with the collector's pair off it.
struct ServeOptions {
  std::string listen;
  std::string tls_cert, tls_key;  // the collector's; used off loopback
  std::string token_file;         // 0600; empty: none
  std::string client_ca;          // empty: no client certificates
};
StatusOr<std::unique_ptr<http::Server>> Serve(const ServeOptions& s, ConsoleOptions o);

}  // namespace gapless::console
