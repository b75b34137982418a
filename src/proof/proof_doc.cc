#include "proof/proof_doc.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "base/json_text.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "identity/identity.h"
#include "merkle/proof.h"
#include "spool/spool_format.h"

namespace gapless::proof {
namespace {

std::string B64(const Hash256& h) {
  return identity::Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
}

Status Invalid(const std::string& why) { return DataLossError(why); }

// One parsed JSON object and typed reads of its members, each failing with the member's
// name. Members may be read in any order.
class JsonDoc {
 public:
  static StatusOr<JsonDoc> Parse(std::string_view text) {
    JsonDoc d;
    d.padded_ = std::make_unique<simdjson::padded_string>(text);
    d.parser_ = std::make_unique<simdjson::ondemand::parser>();
    if (d.parser_->iterate(*d.padded_).get(d.doc_) != simdjson::SUCCESS) {
      return InvalidArgumentError("not a JSON document");
    }
    return d;
  }
  Status Str(const char* key, std::string* out) {
    std::string_view sv;
    if (doc_[key].get_string().get(sv) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing or non-string \"") + key + "\"");
    }
    *out = std::string(sv);
    return Status::Ok();
  }
  Status Num(const char* key, uint64_t* out) {
    if (doc_[key].get_uint64().get(*out) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing or non-integer \"") + key + "\"");
    }
    return Status::Ok();
  }
  Status Hashes(const char* key, std::vector<Hash256>* out) {
    simdjson::ondemand::array arr;
    if (doc_[key].get_array().get(arr) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing \"") + key + "\" array");
    }
    for (auto el : arr) {
      std::string_view sv;
      if (el.get_string().get(sv) != simdjson::SUCCESS) {
        return InvalidArgumentError(std::string(key) + " holds a non-string");
      }
      auto raw = identity::Base64Decode(sv);
      if (!raw.ok() || raw->size() != 32) {
        return InvalidArgumentError(std::string(key) +
                                    " holds something other than base64 of 32 bytes");
      }
      Hash256 h;
      std::copy(raw->begin(), raw->end(), h.begin());
      out->push_back(h);
    }
    return Status::Ok();
  }
  Status Format(std::string_view want) {
    std::string format;
    RETURN_IF_ERROR(Str("format", &format));
    if (format != want) return InvalidArgumentError("unknown proof format \"" + format + "\"");
    return Status::Ok();
  }

 private:
  std::unique_ptr<simdjson::padded_string> padded_;
  std::unique_ptr<simdjson::ondemand::parser> parser_;
  simdjson::ondemand::document doc_;
};

std::string HashList(const std::vector<Hash256>& hashes) {
  std::string j = "[";
  for (size_t i = 0; i < hashes.size(); ++i) j += (i ? ", " : "") + JsonString(B64(hashes[i]));
  return j + "]";
}

// The signed checkpoint in a note, checked: signed by the key, and a collector's
// checkpoint of stream agent/epoch.
StatusOr<checkpoint::Checkpoint> SignedStreamCheckpoint(std::string_view note_text,
                                                        const checkpoint::Verifier& verifier,
                                                        const std::string& agent,
                                                        const std::string& epoch,
                                                        const std::string& what) {
  auto note = checkpoint::ParseNote(note_text);
  if (!note.ok()) return Invalid(what + ": " + note.status().message());
  if (Status s = checkpoint::VerifyNote(*note, verifier); !s.ok()) {
    return Status(s.code(), what + " signature: " + s.message());
  }
  auto cp = checkpoint::ParseCheckpoint(note->text);
  if (!cp.ok()) return Invalid(what + ": " + cp.status().message());
  const std::string suffix = "/" + agent + "/" + epoch;
  if (cp->origin.rfind("gapless/collector/", 0) != 0 || cp->origin.size() < suffix.size() ||
      cp->origin.compare(cp->origin.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return Invalid("the " + what + " is of " + cp->origin + ", not of stream " + agent + "/" +
                   epoch);
  }
  return *cp;
}

StatusOr<checkpoint::Verifier> ParseKey(std::string_view verifier_key) {
  auto verifier = checkpoint::ParseVerifierKey(verifier_key);
  if (!verifier.ok()) return InvalidArgumentError("verifier key: " + verifier.status().message());
  return *verifier;
}

}  // namespace

std::string FormatProofDoc(const ProofDoc& d) {
  const auto type = d.leaf_input.empty() ? 0 : static_cast<uint8_t>(d.leaf_input[0]);
  std::string j = "{\n";
  j += "  \"format\": " + JsonString(kProofFormat) + ",\n";
  j += "  \"agent\": " + JsonString(d.agent) + ",\n";
  j += "  \"epoch\": " + JsonString(d.epoch) + ",\n";
  j += "  \"seq\": " + std::to_string(d.seq) + ",\n";
  j += "  \"record_type\": " +
       JsonString(type == static_cast<uint8_t>(spool::FrameType::kLoss) ? "loss" : "data") + ",\n";
  j += "  \"leaf_input\": " + JsonString(identity::Base64Encode(d.leaf_input)) + ",\n";
  j += "  \"tree_size\": " + std::to_string(d.tree_size) + ",\n";
  j += "  \"inclusion_path\": " + HashList(d.inclusion_path) + ",\n";
  j += "  \"checkpoint\": " + JsonString(d.checkpoint) + ",\n";
  j += "  \"collector_key\": " + JsonString(d.collector_key) + "\n";
  j += "}\n";
  return j;
}

StatusOr<std::string> ProofFormat(std::string_view json) {
  ASSIGN_OR_RETURN(JsonDoc d, JsonDoc::Parse(json));
  std::string format;
  RETURN_IF_ERROR(d.Str("format", &format));
  return format;
}

StatusOr<ProofDoc> ParseProofDoc(std::string_view json) {
  ASSIGN_OR_RETURN(JsonDoc d, JsonDoc::Parse(json));
  RETURN_IF_ERROR(d.Format(kProofFormat));
  ProofDoc p;
  RETURN_IF_ERROR(d.Str("agent", &p.agent));
  RETURN_IF_ERROR(d.Str("epoch", &p.epoch));
  RETURN_IF_ERROR(d.Num("seq", &p.seq));
  RETURN_IF_ERROR(d.Str("leaf_input", &p.leaf_input));
  RETURN_IF_ERROR(d.Num("tree_size", &p.tree_size));
  RETURN_IF_ERROR(d.Hashes("inclusion_path", &p.inclusion_path));
  RETURN_IF_ERROR(d.Str("checkpoint", &p.checkpoint));
  RETURN_IF_ERROR(d.Str("collector_key", &p.collector_key));
  auto leaf = identity::Base64Decode(p.leaf_input);
  if (!leaf.ok() || leaf->empty()) return InvalidArgumentError("leaf_input is not base64");
  p.leaf_input = *leaf;
  return p;
}

Status VerifyProofDoc(const ProofDoc& doc, std::string_view verifier_key, std::string* who) {
  ASSIGN_OR_RETURN(checkpoint::Verifier verifier, ParseKey(verifier_key));
  ASSIGN_OR_RETURN(
      checkpoint::Checkpoint cp,
      SignedStreamCheckpoint(doc.checkpoint, verifier, doc.agent, doc.epoch, "checkpoint"));
  if (cp.size != doc.tree_size) {
    return Invalid("tree_size " + std::to_string(doc.tree_size) +
                   " differs from the signed checkpoint's size " + std::to_string(cp.size));
  }
  if (doc.leaf_input.empty()) return Invalid("empty leaf_input");
  const auto type = static_cast<spool::FrameType>(static_cast<uint8_t>(doc.leaf_input[0]));
  const Hash256 leaf = spool::RecordLeafHash(type, std::string_view(doc.leaf_input).substr(1));
  RETURN_IF_ERROR(merkle::VerifyInclusion(leaf, doc.seq, cp.size, doc.inclusion_path, cp.root));
  *who = verifier.name;
  return Status::Ok();
}

std::string FormatConsistencyDoc(const ConsistencyDoc& d) {
  std::string j = "{\n";
  j += "  \"format\": " + JsonString(kConsistencyFormat) + ",\n";
  j += "  \"agent\": " + JsonString(d.agent) + ",\n";
  j += "  \"epoch\": " + JsonString(d.epoch) + ",\n";
  j += "  \"old_checkpoint\": " + JsonString(d.old_checkpoint) + ",\n";
  j += "  \"new_checkpoint\": " + JsonString(d.new_checkpoint) + ",\n";
  j += "  \"consistency_path\": " + HashList(d.consistency_path) + ",\n";
  j += "  \"collector_key\": " + JsonString(d.collector_key) + "\n";
  j += "}\n";
  return j;
}

StatusOr<ConsistencyDoc> ParseConsistencyDoc(std::string_view json) {
  ASSIGN_OR_RETURN(JsonDoc d, JsonDoc::Parse(json));
  RETURN_IF_ERROR(d.Format(kConsistencyFormat));
  ConsistencyDoc c;
  RETURN_IF_ERROR(d.Str("agent", &c.agent));
  RETURN_IF_ERROR(d.Str("epoch", &c.epoch));
  RETURN_IF_ERROR(d.Str("old_checkpoint", &c.old_checkpoint));
  RETURN_IF_ERROR(d.Str("new_checkpoint", &c.new_checkpoint));
  RETURN_IF_ERROR(d.Hashes("consistency_path", &c.consistency_path));
  RETURN_IF_ERROR(d.Str("collector_key", &c.collector_key));
  return c;
}

Status VerifyConsistencyDoc(const ConsistencyDoc& doc, std::string_view verifier_key,
                            std::string* who) {
  ASSIGN_OR_RETURN(checkpoint::Verifier verifier, ParseKey(verifier_key));
  ASSIGN_OR_RETURN(
      checkpoint::Checkpoint old_cp,
      SignedStreamCheckpoint(doc.old_checkpoint, verifier, doc.agent, doc.epoch, "old checkpoint"));
  ASSIGN_OR_RETURN(
      checkpoint::Checkpoint new_cp,
      SignedStreamCheckpoint(doc.new_checkpoint, verifier, doc.agent, doc.epoch, "new checkpoint"));
  if (old_cp.origin != new_cp.origin) {
    return Invalid("the checkpoints are of two logs: " + old_cp.origin + " and " + new_cp.origin);
  }
  if (old_cp.size > new_cp.size) {
    return Invalid("the old checkpoint (size " + std::to_string(old_cp.size) +
                   ") is larger than the new one (size " + std::to_string(new_cp.size) + ")");
  }
  RETURN_IF_ERROR(merkle::VerifyConsistency(old_cp.size, new_cp.size, old_cp.root, new_cp.root,
                                            doc.consistency_path));
  *who = verifier.name;
  return Status::Ok();
}

}  // namespace gapless::proof
