// Fuzzes the output shapes (src/output/shape.h) with stored payloads of any bytes, and with
// events whose fields hold any bytes. Properties checked, beyond "never crashes":
//   - the json shape is always one line of valid JSON (simdjson also checks UTF-8) that
//     carries the record's gapless.seq;
//   - the rfc5424 shape always starts with a PRI and carries the provenance element;
//   - the ecs and ocsf shapes are one line of valid JSON with the seq in gapless.seq and
//     unmapped.gapless.seq, and ocsf's class_uid is 0 (Base Event).
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "event/event.h"
#include "output/shape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gapless;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string payload;
  if (mode & 1) {  // an encoded event whose fields are pieces of the input
    const size_t q = in.size() / 4;
    event::Event e;
    e.format = static_cast<event::Format>(mode >> 5);
    e.flags = static_cast<uint16_t>((mode >> 1) & event::kKnownFlags);
    e.raw = in;
    e.message = in.substr(0, 2 * q);
    e.host = in.substr(q, q);
    e.app = in.substr(2 * q, q / 2);
    e.fields = {{in.substr(3 * q, q / 2), in.substr(3 * q + q / 2)}, {in.substr(0, 1), in}};
    e.severity = static_cast<uint8_t>(mode % 9);
    event::EncodeEvent(e, &payload);
  } else {
    payload.assign(in);
  }
  const spool::FrameType type = (mode & 2) ? spool::FrameType::kLoss : spool::FrameType::kData;
  const output::Provenance p{"agent-\xff", "00ff", 7, spool::RecordLeafHash(type, payload)};
  const std::string json = output::FormatRecord(output::Shape::kJson, p, type, payload).body;
  if (json.find('\n') != std::string::npos) __builtin_trap();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) __builtin_trap();
  uint64_t seq = 0;
  if (doc["gapless.seq"].get(seq) != simdjson::SUCCESS || seq != 7) __builtin_trap();
  const std::string line = output::FormatRecord(output::Shape::kRfc5424, p, type, payload).body;
  if (line.empty() || line[0] != '<' || line.find("[gapless@32473 ") == std::string::npos) {
    __builtin_trap();
  }
  (void)output::FormatRecord(output::Shape::kRaw, p, type, payload);
  // The schema shapes: one line of valid JSON each, the seq where their tables say.
  const std::string ecs = output::FormatRecord(output::Shape::kEcs, p, type, payload).body;
  if (ecs.find('\n') != std::string::npos || parser.parse(ecs).get(doc) != simdjson::SUCCESS ||
      doc["gapless"]["seq"].get(seq) != simdjson::SUCCESS || seq != 7) {
    __builtin_trap();
  }
  const std::string ocsf = output::FormatRecord(output::Shape::kOcsf, p, type, payload).body;
  uint64_t class_uid = 1;
  if (ocsf.find('\n') != std::string::npos || parser.parse(ocsf).get(doc) != simdjson::SUCCESS ||
      doc["unmapped"]["gapless"]["seq"].get(seq) != simdjson::SUCCESS || seq != 7 ||
      doc["class_uid"].get(class_uid) != simdjson::SUCCESS || class_uid != 0) {
    __builtin_trap();
  }
  return 0;
}
