// Prover: the proof documents of a collector's store (docs/formats/proof.md) — the library
// behind `gapless prove`, `gapless query --with-proof` and, later, the console's proof
// downloads. Every proof is checked against the signed root, as an auditor will check it,
// before it is returned: a store altered after it was signed yields no proof.
//
// A Prover keeps, per stream, the latest signed checkpoint it read and the store's hashes
// checked against it, so that many proofs of one stream (a query's results) cost one
// check; a seq the kept checkpoint does not cover makes it read the checkpoints again.
// Thread contract: one thread at a time; reads only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "checkpoint/checkpoint.h"
#include "env/env.h"
#include "store/hash_levels.h"
#include "store/layout.h"

namespace gapless::proof {

class Prover {
 public:
  Prover(env::Env* env, std::string data_dir);
  ~Prover();
  Prover(const Prover&) = delete;
  Prover& operator=(const Prover&) = delete;

  // The inclusion proof of the record at seq against the stream's latest signed checkpoint
  // (witnessed: the latest one a witness cosigned). epoch empty: the agent's only epoch.
  // kNotFound when no signed checkpoint covers seq yet (the message says to retry).
  StatusOr<std::string> Inclusion(const std::string& agent, const std::string& epoch, uint64_t seq,
                                  bool witnessed = false);
  // The consistency proof between the checkpoint of old_size and the latest one.
  StatusOr<std::string> Consistency(const std::string& agent, const std::string& epoch,
                                    uint64_t old_size, bool witnessed = false);

 private:
  struct Signed {
    std::string note;  // with the cosignature lines kept for it
    checkpoint::Checkpoint cp;
  };
  struct Stream {
    store::StreamRef ref;
    std::optional<Signed> latest;  // with the witnessed flag it was read for
    bool witnessed = false;
    std::unique_ptr<store::StoredHashSource> source;  // checked against latest
  };
  StatusOr<store::StreamRef> Find(const std::string& agent, const std::string& epoch) const;
  StatusOr<Signed> Checkpoint(const std::string& dir, std::optional<uint64_t> old_size,
                              bool witnessed) const;
  StatusOr<std::unique_ptr<store::StoredHashSource>> CheckedSource(
      const std::string& dir, const checkpoint::Checkpoint& cp) const;
  // The stream with its latest checkpoint read (again, when `refresh`) and checked.
  StatusOr<Stream*> Latest(const std::string& agent, const std::string& epoch, bool witnessed,
                           bool refresh);
  std::string CollectorKey() const;

  env::Env* const env_;
  const store::Layout layout_;
  std::map<std::string, Stream> streams_;  // by "agent/epoch as asked"
};

}  // namespace gapless::proof
