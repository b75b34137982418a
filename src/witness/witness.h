// A C2SP tlog-witness (docs/formats/witness.md): it keeps, per log origin, the latest
// checkpoint it verified and cosigned, and cosigns a new checkpoint only if the log's
// signature verifies and a consistency proof shows the new tree extends that one. So a
// log (a gapless collector) that rewrote or forked its history cannot get a cosignature
// for it: a second, independent party has to have seen the same tree.
//
// This is the protocol logic, free of HTTP (witness/server.h serves it). Thread-safe:
// one mutex makes "check the old size, persist the new checkpoint" atomic, as the spec
// requires.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "identity/identity.h"

namespace gapless::witness {

struct TrustedLog {
  // The origin the key may sign, or, ending in '/', every origin under that prefix (a
  // gapless collector signs one origin per stream: "gapless/collector/<name>/...").
  std::string origin;
  checkpoint::Verifier key;
};

struct WitnessOptions {
  std::string name;      // the cosigner's key name, e.g. "witness.example/w1"
  std::string data_dir;  // state: one file per origin, written atomically
  std::vector<TrustedLog> logs;
};

struct AddResult {
  int status = 200;  // the HTTP status the spec assigns
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;  // 200: cosignature lines; 409 on size: "<size>\n"; else why
};

class Witness {
 public:
  static StatusOr<std::unique_ptr<Witness>> Open(env::Env* env, const WitnessOptions& o,
                                                 std::shared_ptr<const identity::SigningKey> key);
  // The whole add-checkpoint exchange for one request body; now = POSIX seconds.
  AddResult AddCheckpoint(std::string_view body, uint64_t now);
  // "<name>+<id>+<base64(0x04 || key)>": what logs and auditors configure.
  const std::string& cosigner_key() const { return cosigner_key_; }

  struct Latest {
    uint64_t size = 0;
    Hash256 root{};
  };

 private:
  Witness() = default;
  std::string StatePath(std::string_view origin) const;

  env::Env* env_ = nullptr;
  WitnessOptions options_;
  std::shared_ptr<const identity::SigningKey> key_;
  std::string cosigner_key_;
  std::mutex mu_;
  std::map<std::string, Latest, std::less<>> latest_;  // GUARDED_BY(mu_), by origin
};

}  // namespace gapless::witness
