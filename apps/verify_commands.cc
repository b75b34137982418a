#include "verify_commands.h"

#include <cstdio>
#include <optional>
#include <vector>

#include "archive/archive.h"
#include "base/json_text.h"
#include "env/env.h"
#include "identity/identity.h"
#include "key_args.h"
#include "store/layout.h"
#include "verify/verify.h"

namespace gapless::cli {
namespace {

std::string Ranges(const std::vector<verify::SeqRange>& ranges, bool json) {
  std::string out;
  for (const auto& r : ranges) {
    if (json) {
      out += std::string(out.empty() ? "" : ", ") + "{\"first\": " + std::to_string(r.first) +
             ", \"last\": " + std::to_string(r.last) +
             (r.reason.empty() ? "" : ", \"reason\": " + JsonString(r.reason)) + "}";
    } else {
      out += std::string(out.empty() ? "" : ", ") + std::to_string(r.first) + ".." +
             std::to_string(r.last) + (r.reason.empty() ? "" : " (" + r.reason + ")");
    }
  }
  return json ? "[" + out + "]" : out;
}

std::string B64(const Hash256& h) {
  return identity::Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
}

void PrintText(const std::string& agent, const std::string& epoch, const verify::StreamReport& r,
               bool signatures) {
  std::printf("stream %s/%s: %s\n", agent.c_str(), epoch.c_str(),
              std::string(verify::VerdictName(r.verdict)).c_str());
  if (r.unsigned_records > 0) {
    std::printf(
        "  NOT YET PROVABLE: %llu records (seqs %llu-%llu) are beyond the largest signed "
        "checkpoint; a running collector signs them within checkpoint_interval_ms, a restarted "
        "one when it starts\n",
        static_cast<unsigned long long>(r.unsigned_records),
        static_cast<unsigned long long>(r.signed_size),
        static_cast<unsigned long long>(r.next_seq - 1));
  }
  std::printf("  %llu records, seqs below %llu, %.1f MB hashed; root %s\n",
              static_cast<unsigned long long>(r.records),
              static_cast<unsigned long long>(r.next_seq),
              static_cast<double>(r.record_bytes) / 1e6, B64(r.root).c_str());
  std::printf("  %llu collector checkpoints (largest size %llu), %s\n",
              static_cast<unsigned long long>(r.checkpoints),
              static_cast<unsigned long long>(r.signed_size),
              signatures ? (std::to_string(r.checkpoints_verified) + " signatures verified").c_str()
                         : "signatures NOT checked (no key)");
  if (r.agent_checkpoints > 0) {
    std::printf(
        "  %llu agent checkpoints (largest size %llu), %s\n",
        static_cast<unsigned long long>(r.agent_checkpoints),
        static_cast<unsigned long long>(r.agent_signed_size),
        r.agent_checkpoints_verified > 0
            ? (std::to_string(r.agent_checkpoints_verified) + " agent signatures verified").c_str()
            : "agent signatures NOT checked (no --agent-keys entry)");
  }
  if (r.witnessed > 0) {
    std::printf("  %llu checkpoints cosigned by a given witness (largest size %llu)\n",
                static_cast<unsigned long long>(r.witnessed),
                static_cast<unsigned long long>(r.witnessed_size));
  }
  if (!r.missing.empty()) std::printf("  missing: %s\n", Ranges(r.missing, false).c_str());
  if (!r.declared_losses.empty()) {
    std::printf("  declared lost (LOSS records): %s\n", Ranges(r.declared_losses, false).c_str());
  }
  if (r.losses_without_range > 0) {
    std::printf(
        "  %llu LOSS records give counts without seqs (e.g. kernel drops before the "
        "spool)\n",
        static_cast<unsigned long long>(r.losses_without_range));
  }
  if (!r.declared_gaps.empty()) {
    std::printf("  declared gone by the agent: %s\n", Ranges(r.declared_gaps, false).c_str());
  }
  for (const std::string& n : r.notes) std::printf("  note: %s\n", n.c_str());
  for (const std::string& p : r.problems) std::printf("  PROBLEM: %s\n", p.c_str());
}

std::string JsonReport(const std::string& agent, const std::string& epoch,
                       const verify::StreamReport& r, bool signatures) {
  std::string problems;
  for (const auto& p : r.problems) problems += (problems.empty() ? "" : ", ") + JsonString(p);
  return "{\"agent\": " + JsonString(agent) + ", \"epoch\": " + JsonString(epoch) +
         ", \"verdict\": " + JsonString(verify::VerdictName(r.verdict)) +
         ", \"records\": " + std::to_string(r.records) +
         ", \"next_seq\": " + std::to_string(r.next_seq) +
         ", \"root\": " + JsonString(B64(r.root)) +
         ", \"checkpoints\": " + std::to_string(r.checkpoints) +
         ", \"checkpoints_verified\": " + std::to_string(r.checkpoints_verified) +
         ", \"signatures_checked\": " + (signatures ? "true" : "false") +
         ", \"signed_size\": " + std::to_string(r.signed_size) +
         ", \"unsigned_records\": " + std::to_string(r.unsigned_records) +
         ", \"witnessed\": " + std::to_string(r.witnessed) +
         ", \"witnessed_size\": " + std::to_string(r.witnessed_size) +
         ", \"agent_checkpoints\": " + std::to_string(r.agent_checkpoints) +
         ", \"agent_checkpoints_verified\": " + std::to_string(r.agent_checkpoints_verified) +
         ", \"agent_signed_size\": " + std::to_string(r.agent_signed_size) +
         ", \"missing\": " + Ranges(r.missing, true) +
         ", \"declared_losses\": " + Ranges(r.declared_losses, true) +
         ", \"losses_without_range\": " + std::to_string(r.losses_without_range) +
         ", \"declared_gaps\": " + Ranges(r.declared_gaps, true) +
         ", \"flagged\": " + (r.flagged ? "true" : "false") + ", \"problems\": [" + problems + "]}";
}

}  // namespace

bool ResolveKey(const std::string& given, const std::string& data_dir,
                std::optional<checkpoint::Verifier>* out) {
  std::string key;
  if (!given.empty()) {
    auto k = KeyArgument(given);
    if (!k.ok()) {
      std::fprintf(stderr, "gapless: --key: %s\n", k.status().message().c_str());
      return false;
    }
    key = *k;
  }
  if (key.empty() && !data_dir.empty()) {
    const std::string path = store::Layout(data_dir).CollectorVerifierKey();
    if (auto k = env::ReadFileToString(env::Env::Posix(), path); k.ok()) {
      key = *k;
      while (!key.empty() && key.back() == '\n') key.pop_back();
      std::fprintf(stderr,
                   "gapless: checking signatures against %s, which sits beside "
                   "what it vouches for; pass --key with a copy you trust\n",
                   path.c_str());
    }
  }
  if (key.empty()) {
    std::fprintf(stderr, "gapless: no --key: signatures are NOT checked\n");
    return true;
  }
  auto v = checkpoint::ParseVerifierKey(key);
  if (!v.ok()) {
    std::fprintf(stderr, "gapless: --key: %s\n", v.status().message().c_str());
    return false;
  }
  *out = *v;
  return true;
}

namespace {

// The enrolled keys file given with --agent-keys (none: *out stays empty). False when it
// cannot be read.
bool LoadAgentKeys(const std::string& path, identity::EnrolledKeys* out) {
  if (path.empty()) return true;
  auto text = env::ReadFileToString(env::Env::Posix(), path);
  if (!text.ok()) {
    std::fprintf(stderr, "gapless verify: --agent-keys: %s\n", text.status().ToString().c_str());
    return false;
  }
  std::vector<int> bad_lines;
  *out = identity::ParseEnrolledKeys(*text, &bad_lines);
  for (int n : bad_lines) {
    std::fprintf(stderr,
                 "gapless verify: %s:%d: expected \"agent_id base64-public-key\"; line ignored\n",
                 path.c_str(), n);
  }
  return true;
}

// Prints an archive's verification; returns the exit status of `verify`.
int ReportArchive(const std::string& path, const std::optional<checkpoint::Verifier>& key,
                  bool json, const archive::Identity* identity,
                  const identity::EnrolledKeys& agent_keys = {}) {
  auto r = archive::VerifyArchive(path, key, identity, agent_keys);
  if (!r.ok()) {
    std::fprintf(stderr, "gapless verify: %s\n", r.status().ToString().c_str());
    return 3;
  }
  if (json) {
    std::string problems;
    for (const auto& p : r->problems) problems += (problems.empty() ? "" : ", ") + JsonString(p);
    std::printf(
        "{\"archive\": %s, \"verdict\": %s, \"sealed\": %s, \"problems\": [%s], "
        "\"streams\": [\n",
        JsonString(path).c_str(), JsonString(verify::VerdictName(r->verdict)).c_str(),
        r->sealed ? "true" : "false", problems.c_str());
    for (size_t i = 0; i < r->streams.size(); ++i) {
      const auto& s = r->streams[i];
      std::printf("  %s%s\n", JsonReport(s.agent, s.epoch, s.report, key.has_value()).c_str(),
                  i + 1 < r->streams.size() ? "," : "");
    }
    std::printf("]}\n");
  } else {
    std::printf("archive %s: %s, %s\n", path.c_str(),
                std::string(verify::VerdictName(r->verdict)).c_str(),
                r->sealed ? "seal verified" : "NOT sealed");
    for (const auto& p : r->problems) std::printf("  PROBLEM: %s\n", p.c_str());
    for (const auto& s : r->streams) {
      std::printf("  exported seqs [%llu, %llu) of:\n", static_cast<unsigned long long>(s.from_seq),
                  static_cast<unsigned long long>(s.to_seq));
      PrintText(s.agent, s.epoch, s.report, key.has_value());
    }
  }
  return static_cast<int>(r->verdict);
}

}  // namespace

int Export(const ExportFlags& f) {
  archive::ExportOptions o;
  o.data_dir = f.data_dir;
  o.streams = f.streams;
  o.from_seq = f.from;
  o.to_seq = f.to;
  o.out = f.out;
  o.signing_key = f.signing_key;
  for (const std::string& r : f.recipients) {
    auto k = archive::ParseRecipient(r);
    if (!k.ok()) {
      std::fprintf(stderr, "gapless export: --recipient %s: %s\n", r.c_str(),
                   k.status().message().c_str());
      return 1;
    }
    o.recipients.push_back(*k);
  }
  auto r = archive::Export(o);
  if (!r.ok()) {
    std::fprintf(stderr, "gapless export: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr,
               "gapless export: %llu records of %llu stream(s), %llu bytes before any "
               "encryption, sealed by %s\n",
               static_cast<unsigned long long>(r->records),
               static_cast<unsigned long long>(r->streams),
               static_cast<unsigned long long>(r->bytes), r->key_name.c_str());
  std::optional<checkpoint::Verifier> key;
  if (!ResolveKey("", f.data_dir, &key)) return 1;
  if (!o.recipients.empty()) {
    std::fprintf(stderr,
                 "gapless export: encrypted to %zu recipient(s); check it with gapless verify %s "
                 "--identity <a recipient's identity> --key <the collector's verifier key>\n",
                 o.recipients.size(), f.out.c_str());
    return 0;
  }
  return ReportArchive(f.out, key, false, nullptr) <= 1 ? 0 : 1;
}

int KeygenRecipient(const std::string& out_path) {
  auto id = archive::Identity::Generate();
  Status s = id.ok() ? id->Save(out_path) : id.status();
  if (!s.ok()) {
    std::fprintf(stderr, "gapless keygen: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr,
               "wrote %s (mode 0600): keep it to decrypt archives. The recipient to "
               "give to gapless export --recipient:\n",
               out_path.c_str());
  std::printf("%s\n", archive::FormatRecipient(id->recipient()).c_str());
  return 0;
}

int Verify(const VerifyFlags& f) {
  env::Env* env = env::Env::Posix();
  if (f.archive.empty() == f.data_dir.empty()) {
    std::fprintf(stderr, "gapless verify: give either an archive file or --data-dir\n");
    return 3;
  }
  if (!f.archive.empty()) {
    if (f.key.empty()) {
      std::fprintf(stderr,
                   "gapless verify: an archive is checked against the collector's verifier key: "
                   "pass --key (the collector's data_dir/collector.vkey, from a copy you trust)\n");
      return 3;
    }
    std::optional<checkpoint::Verifier> key;
    if (!ResolveKey(f.key, "", &key)) return 3;
    std::optional<archive::Identity> identity;
    if (!f.identity.empty()) {
      auto id = archive::Identity::Load(f.identity);
      if (!id.ok()) {
        std::fprintf(stderr, "gapless verify: --identity: %s\n", id.status().message().c_str());
        return 3;
      }
      identity = *id;
    }
    identity::EnrolledKeys agent_keys;
    if (!LoadAgentKeys(f.agent_keys, &agent_keys)) return 3;
    return ReportArchive(f.archive, key, f.json, identity ? &*identity : nullptr, agent_keys);
  }
  const store::Layout layout(f.data_dir);
  auto streams = layout.ListStreams(env);
  if (Status s = streams.ok() ? layout.CheckFormat(env) : streams.status(); !s.ok()) {
    std::fprintf(stderr, "gapless verify: %s\n", s.message().c_str());
    return 3;
  }
  verify::Options options;
  if (!ResolveKey(f.key, f.data_dir, &options.collector_key)) return 3;
  for (const std::string& k : f.witness_keys) {
    auto text = KeyArgument(k);
    auto v = text.ok() ? checkpoint::ParseCosignerKey(*text) : text.status();
    if (!v.ok()) {
      std::fprintf(stderr, "gapless verify: --witness-key %s: %s\n", k.c_str(),
                   v.status().message().c_str());
      return 3;
    }
    options.witness_keys.push_back(*v);
  }
  if (!LoadAgentKeys(f.agent_keys, &options.agent_keys)) return 3;
  int worst = -1;
  std::vector<std::string> json;
  for (const store::StreamRef& stream : *streams) {
    const std::string& agent = stream.agent;
    if (!f.agent.empty() && agent != f.agent) continue;
    {
      const std::string& epoch = stream.epoch;
      if (!f.epoch.empty() && epoch != f.epoch) continue;
      auto r = verify::VerifyStream(env, stream.dir, options);
      if (!r.ok()) {
        std::fprintf(stderr, "gapless verify: %s/%s: %s\n", agent.c_str(), epoch.c_str(),
                     r.status().ToString().c_str());
        worst = std::max(worst, static_cast<int>(verify::Verdict::kTampered));
        continue;
      }
      worst = std::max(worst, static_cast<int>(r->verdict));
      if (f.json) {
        json.push_back(JsonReport(agent, epoch, *r, options.collector_key.has_value()));
      } else {
        PrintText(agent, epoch, *r, options.collector_key.has_value());
      }
    }
  }
  if (worst < 0) {
    std::fprintf(stderr, "gapless verify: no stream matched in %s\n", f.data_dir.c_str());
    return 3;
  }
  if (f.json) {
    std::printf("{\"streams\": [\n");
    for (size_t i = 0; i < json.size(); ++i) {
      std::printf("  %s%s\n", json[i].c_str(), i + 1 < json.size() ? "," : "");
    }
    std::printf("]}\n");
  }
  return worst;
}

}  // namespace gapless::cli
