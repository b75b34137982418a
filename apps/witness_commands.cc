#include "witness_commands.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>

#include "base/log.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "identity/identity.h"
#include "key_args.h"
#include "witness/server.h"
#include "witness/witness.h"

namespace gapless::cli {
namespace {

// data_dir/witness.key, made (mode 0600) on the first start.
StatusOr<std::unique_ptr<identity::SigningKey>> LoadOrMakeKey(const std::string& data_dir) {
  env::Env* env = env::Env::Posix();
  if (!env->FileExists(data_dir)) RETURN_IF_ERROR(env->CreateDir(data_dir));
  const std::string path = data_dir + "/witness.key";
  if (!env->FileExists(path)) {
    ASSIGN_OR_RETURN(auto key, identity::SigningKey::Generate());
    RETURN_IF_ERROR(key->Save(path));
    LogInfo("witness: made the cosigning key " + path);
  }
  return identity::SigningKey::Load(path);
}

}  // namespace

int RunWitness(const WitnessFlags& flags) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  witness::WitnessOptions o;
  o.name = flags.name;
  o.data_dir = flags.data_dir;
  for (const std::string& vkey : flags.collectors) {
    auto text = KeyArgument(vkey);
    auto v = text.ok() ? checkpoint::ParseVerifierKey(*text) : text.status();
    if (!v.ok()) {
      std::fprintf(stderr, "gapless witness: --collector %s: %s\n", vkey.c_str(),
                   v.status().message().c_str());
      return 1;
    }
    // A collector's key is named "gapless/collector/<name>" and signs one origin per
    // stream under that name.
    o.logs.push_back({v->name + "/", *v});
  }
  auto key = LoadOrMakeKey(flags.data_dir);
  if (!key.ok()) {
    std::fprintf(stderr, "gapless witness: %s\n", key.status().ToString().c_str());
    return 1;
  }
  auto w = witness::Witness::Open(env::Env::Posix(), o, std::move(*key));
  if (!w.ok()) {
    std::fprintf(stderr, "gapless witness: %s\n", w.status().ToString().c_str());
    return 1;
  }
  auto server = witness::StartServer(w->get(), flags.listen);
  if (!server.ok()) {
    std::fprintf(stderr, "gapless witness: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (Status s = env::WriteFileAtomically(env::Env::Posix(), flags.data_dir + "/witness.vkey",
                                          (*w)->cosigner_key() + "\n");
      !s.ok()) {
    LogWarning("witness: cannot write witness.vkey: " + s.ToString());
  }
  LogInfo("witness " + flags.name + " on http://" +
          flags.listen.substr(0, flags.listen.rfind(':')) + ":" +
          std::to_string((*server)->port()) + "/add-checkpoint, trusting " +
          std::to_string(o.logs.size()) + " collector key(s); its cosigner key (for the " +
          "collectors' [[collector.witness]] and for auditors): " + (*w)->cosigner_key());
  int sig = 0;
  sigwait(&set, &sig);
  LogInfo("witness: stopping");
  (*server)->Stop();
  return 0;
}

}  // namespace gapless::cli
