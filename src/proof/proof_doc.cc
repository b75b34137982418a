#include "proof/proof_doc.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>

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
  j += "  \"inclusion_path\": [";
  for (size_t i = 0; i < d.inclusion_path.size(); ++i) {
    j += (i ? ", " : "") + JsonString(B64(d.inclusion_path[i]));
  }
  j += "],\n";
  j += "  \"checkpoint\": " + JsonString(d.checkpoint) + ",\n";
  j += "  \"collector_key\": " + JsonString(d.collector_key) + "\n";
  j += "}\n";
  return j;
}

StatusOr<ProofDoc> ParseProofDoc(std::string_view text) {
  namespace od = simdjson::ondemand;
  od::parser parser;
  simdjson::padded_string padded(text);
  od::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) {
    return InvalidArgumentError("not a JSON document");
  }
  ProofDoc p;
  std::string_view sv;
  auto str = [&](const char* key, std::string* out) -> Status {
    if (doc[key].get_string().get(sv) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing or non-string \"") + key + "\"");
    }
    *out = std::string(sv);
    return Status::Ok();
  };
  auto num = [&](const char* key, uint64_t* out) -> Status {
    if (doc[key].get_uint64().get(*out) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing or non-integer \"") + key + "\"");
    }
    return Status::Ok();
  };
  std::string format;
  RETURN_IF_ERROR(str("format", &format));
  if (format != kProofFormat)
    return InvalidArgumentError("unknown proof format \"" + format + "\"");
  RETURN_IF_ERROR(str("agent", &p.agent));
  RETURN_IF_ERROR(str("epoch", &p.epoch));
  RETURN_IF_ERROR(num("seq", &p.seq));
  RETURN_IF_ERROR(str("leaf_input", &p.leaf_input));
  RETURN_IF_ERROR(num("tree_size", &p.tree_size));
  od::array arr;
  if (doc["inclusion_path"].get_array().get(arr) != simdjson::SUCCESS) {
    return InvalidArgumentError("missing \"inclusion_path\" array");
  }
  for (auto el : arr) {
    if (el.get_string().get(sv) != simdjson::SUCCESS) {
      return InvalidArgumentError("inclusion_path holds a non-string");
    }
    auto raw = identity::Base64Decode(sv);
    if (!raw.ok() || raw->size() != 32) {
      return InvalidArgumentError("inclusion_path holds something other than base64 of 32 bytes");
    }
    Hash256 h;
    std::copy(raw->begin(), raw->end(), h.begin());
    p.inclusion_path.push_back(h);
  }
  RETURN_IF_ERROR(str("checkpoint", &p.checkpoint));
  RETURN_IF_ERROR(str("collector_key", &p.collector_key));
  auto leaf = identity::Base64Decode(p.leaf_input);
  if (!leaf.ok() || leaf->empty()) return InvalidArgumentError("leaf_input is not base64");
  p.leaf_input = *leaf;
  return p;
}

Status VerifyProofDoc(const ProofDoc& doc, std::string_view verifier_key, std::string* who) {
  auto verifier = checkpoint::ParseVerifierKey(verifier_key);
  if (!verifier.ok()) return InvalidArgumentError("verifier key: " + verifier.status().message());
  auto note = checkpoint::ParseNote(doc.checkpoint);
  if (!note.ok()) return Invalid("checkpoint: " + note.status().message());
  if (Status s = checkpoint::VerifyNote(*note, *verifier); !s.ok()) {
    return Status(s.code(), "checkpoint signature: " + s.message());
  }
  auto cp = checkpoint::ParseCheckpoint(note->text);
  if (!cp.ok()) return Invalid("checkpoint: " + cp.status().message());
  const std::string suffix = "/" + doc.agent + "/" + doc.epoch;
  if (cp->origin.rfind("gapless/collector/", 0) != 0 || cp->origin.size() < suffix.size() ||
      cp->origin.compare(cp->origin.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return Invalid("the checkpoint is of " + cp->origin + ", not of stream " + doc.agent + "/" +
                   doc.epoch);
  }
  if (cp->size != doc.tree_size) {
    return Invalid("tree_size " + std::to_string(doc.tree_size) +
                   " differs from the signed checkpoint's size " + std::to_string(cp->size));
  }
  if (doc.leaf_input.empty()) return Invalid("empty leaf_input");
  const auto type = static_cast<spool::FrameType>(static_cast<uint8_t>(doc.leaf_input[0]));
  const Hash256 leaf = spool::RecordLeafHash(type, std::string_view(doc.leaf_input).substr(1));
  RETURN_IF_ERROR(merkle::VerifyInclusion(leaf, doc.seq, cp->size, doc.inclusion_path, cp->root));
  *who = verifier->name;
  return Status::Ok();
}

}  // namespace gapless::proof
