// The downstream side of an output: a Sink sends formatted records and says, per record,
// what the downstream answered. Each output type is one Sink (file_sink.cc, relp_sink.cc);
// tests implement their own to play a downstream.
//
// Thread contract: a Sink is used by its output's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "output/output.h"

namespace gapless::output {

struct Item {
  uint64_t seq = 0;
  std::string id;    // the idempotency key: "<agent>/<epoch>/<seq>"
  std::string body;  // the record in the output's shape
};

struct ItemResult {
  enum class State { kDelivered, kRetry, kRejected };
  State state = State::kRetry;
  std::string reason;  // kRetry / kRejected: the downstream's words
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Sends items; on OK, results has one entry per item. An error means nothing was
  // confirmed (the connection failed, the downstream timed out): all are sent again.
  virtual Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) = 0;
  // False when the protocol offers no acknowledgement: delivery is "sent, unconfirmed".
  virtual bool confirmed() const { return true; }
  // Called from another thread when the output stops: a Send waiting for a slow
  // acknowledgement returns early, its unconfirmed items left to be sent again.
  virtual void Interrupt() {}
};

StatusOr<std::unique_ptr<Sink>> NewFileSink(env::Env* env, const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewRelpSink(const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewSyslogSink(const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewElasticsearchSink(const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewNatsSink(const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewSplunkHecSink(const OutputOptions& o);
StatusOr<std::unique_ptr<Sink>> NewKafkaSink(const OutputOptions& o);

// A secret (an API key, a token) from a file only its owner can read; trailing newlines
// and spaces dropped. `what` names the option in errors.
StatusOr<std::string> ReadSecretFile(const std::string& output, const std::string& what,
                                     const std::string& path);

}  // namespace gapless::output
