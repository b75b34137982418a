// Fuzzes what a witness reads from the network (src/witness): the add-checkpoint body
// parser, and the whole AddCheckpoint exchange. Properties, beyond "never crashes or
// reads out of bounds":
//   - a body that parses formats back to the same request;
//   - a witness that trusts only a key nobody holds the private half of never answers
//     200 (never cosigns) and never answers outside the statuses the spec assigns.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "checkpoint/note.h"
#include "env/env.h"
#include "witness/protocol.h"
#include "witness/witness.h"

namespace w = gapless::witness;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

w::Witness* TheWitness() {
  static w::Witness* witness = [] {
    static char tmpl[] = "/tmp/witness_fuzzer_XXXXXX";
    Check(mkdtemp(tmpl) != nullptr);
    std::atexit([] { std::filesystem::remove_all(tmpl); });
    gapless::identity::PublicKey stranger;
    stranger.fill(0x42);
    w::WitnessOptions o;
    o.name = "fuzz.witness";
    o.data_dir = tmpl;
    o.logs.push_back({"gapless/collector/",
                      *gapless::checkpoint::ParseVerifierKey(gapless::checkpoint::FormatVerifierKey(
                          "gapless/collector/x", stranger))});
    auto key = gapless::identity::SigningKey::Generate();
    Check(key.ok());
    auto opened = w::Witness::Open(gapless::env::Env::Posix(), o, std::move(*key));
    Check(opened.ok());
    return opened->release();
  }();
  return witness;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = w::ParseAddCheckpoint(in); r.ok()) {
    auto again = w::ParseAddCheckpoint(w::FormatAddCheckpoint(*r));
    Check(again.ok() && again->old_size == r->old_size && again->proof == r->proof &&
          again->checkpoint == r->checkpoint);
  }
  const w::AddResult res = TheWitness()->AddCheckpoint(in, 1);
  Check(res.status == 400 || res.status == 403 || res.status == 404);
  return 0;
}
