// Collector outputs: deliver every stored record into a downstream (a SIEM's receiver, a
// forwarder, a file) and account for what the downstream has not confirmed.
//
// Each [[output]] runs on its own thread with its own durable cursor per stream, so a
// downstream that is down or slow never blocks ingest and never blocks another output;
// the store is the buffer. An output delivers only records covered by a signed
// checkpoint of the collector (so every delivered record can later be proven with
// `gapless prove`), reads them through store::StreamReader, and moves its cursor only
// when the downstream really acknowledged them (docs/outputs.md lists, per type, what
// that acknowledgement is). After a restart or kill -9 it resumes at the cursor:
// at-least-once, and every record carries an idempotency key (gapless.id) so that a
// downstream that can deduplicate does. Retries go on forever with capped, jittered
// backoff. A record the downstream refuses for good is written down (the .rejected
// account, docs/formats/store.md), alerted as output_rejected, and stays in the store.
// No progress for stall_after_ms while records wait: output_stalled.
//
// Thread contract: Outputs is thread-safe. Signed() is cheap (a map update under a
// mutex) and is called by the collector's committer thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "base/status.h"
#include "env/env.h"

namespace gapless::output {

enum class Shape {
  kJson,     // one JSON object per record: gapless's event fields (docs/outputs.md)
  kRaw,      // the original bytes as received
  kRfc5424,  // an RFC 5424 message: the event's header and message, provenance as SD
  kEcs,      // one JSON object per record in Elastic Common Schema 8.11 fields
  kOcsf,     // one JSON object per record as an OCSF 1.1 Base Event
};

struct OutputOptions {
  std::string name;     // [A-Za-z0-9_-]{1,64}; names its state files
  std::string type;     // "file", "relp", "syslog", "elasticsearch", "nats", "splunk_hec", "kafka"
  std::string address;  // relp, syslog: host:port; kafka: the bootstrap brokers, host:port,...
  std::string path;     // file: the NDJSON file (rotated past max_file_bytes)
  uint64_t max_file_bytes = 256ull << 20;
  std::string url;    // elasticsearch: http(s)://host:port (or a prefix); nats: nats:// or tls://
  std::string index;  // elasticsearch: the index (or data stream) written to
  std::string api_key_file;  // elasticsearch: mode 0600, the encoded API key; empty: none
  bool tls = false;          // relp, syslog: TLS (the receiver's certificate verified)
  std::string server_name;   // relp, syslog with tls: the name it must carry; empty: the host
  std::string cert_file;     // relp, syslog with tls: a client certificate, if the receiver
  std::string key_file;      //   asks for one (rsyslog's imrelp with tls.mycert does); 0600
  std::string ca_file;       // https / tls://: the CA file; empty: the system's CAs
  std::string topic;         // kafka: the topic written to
  std::string subject;       // nats: the subject published to (no wildcards)
  std::string stream;        // nats: the JetStream stream expected to store it; empty: any
  std::string token_file;    // nats, splunk_hec: mode 0600, the token; empty: none (nats only)
  std::string sourcetype = "gapless";  // splunk_hec: every event's sourcetype
  int64_t ack_poll_ms = 100;           // splunk_hec: first ack poll, doubling to 1 s
  int64_t ack_timeout_ms = 60'000;     // splunk_hec: no ack by then: the batch is sent again
  std::vector<std::string> streams;    // agent-id globs (fnmatch); empty: every stream
  // Required: a stall is critical (else warning), and it counts against /health.
  bool required = true;
  Shape shape = Shape::kJson;
  size_t batch_records = 512;       // at most this many records per downstream call
  int64_t retry_min_ms = 100;       // backoff after a failure: doubles up to retry_max_ms,
  int64_t retry_max_ms = 30'000;    // with jitter, forever
  int64_t stall_after_ms = 60'000;  // output_stalled after this long without progress
  int64_t timeout_ms = 10'000;      // one downstream call (connect, send, answers)
  int64_t cursor_save_ms = 200;     // the cursor is saved at most this often (and at Stop)
};

// Checks one output's options; kInvalidArgument saying what to fix.
Status ValidateOutput(const OutputOptions& o);
// Checks the files a valid output's options name, as far as that can be known without
// reaching the downstream: secrets (api_key_file, token_file, key_file) readable by their
// owner only, CA and certificate files readable, a file output's directory there.
Status CheckOutputFiles(const OutputOptions& o);
bool ValidOutputName(const std::string& name);
// Whether the shape can be carried by the type (a file holds one JSON object per line).
bool ShapeFitsType(Shape shape, const std::string& type);
StatusOr<Shape> ParseShape(const std::string& name);
// json, ecs and ocsf: one JSON object per record.
inline bool IsJsonShape(Shape s) {
  return s == Shape::kJson || s == Shape::kEcs || s == Shape::kOcsf;
}
std::string_view ShapeName(Shape shape);

// The size of the newest signed checkpoint of a stream directory (0: none yet).
StatusOr<uint64_t> LastSignedSize(env::Env* env, const std::string& stream_dir);

struct StreamAccount {
  std::string agent;
  std::string epoch;
  uint64_t signed_size = 0;  // what the destination should have: seqs [0, signed_size)
  uint64_t delivered = 0;    // the cursor: every seq below it confirmed (or rejected)
  uint64_t retried = 0;      // records sent again after a failure or a per-item retry
  uint64_t rejected = 0;     // refused for good by the downstream (the .rejected account)
  uint64_t unreadable = 0;   // damaged in the store, so not deliverable (verify says more)
  double lag_seconds = 0;    // age of the oldest record not yet confirmed
  bool stalled = false;
};

struct OutputStats {
  std::string name;
  std::string type;
  bool confirmed = true;  // false: the protocol has no acknowledgement ("sent, unconfirmed")
  bool required = true;
  uint64_t delivered = 0;  // records confirmed since start
  uint64_t failures = 0;   // downstream calls that failed
  std::string last_error;
  std::vector<StreamAccount> streams;
};

// What an output's state on disk says, read while the collector runs or not (the
// `gapless outputs` report): per stream, what the destination should have (the newest
// signed size) and what it confirmed (the saved cursor, which may lag the running
// output's by up to cursor_save_ms).
struct ReportRow {
  std::string agent, epoch;
  uint64_t signed_size = 0;
  uint64_t delivered = 0;
  uint64_t rejected = 0;    // lines of the .rejected account
  bool has_cursor = false;  // false: nothing confirmed yet (or not selected)
  bool selected = true;     // the output's streams globs take this stream
  std::string problem;      // an unreadable cursor
};
struct OutputReport {
  std::string name;
  std::string type;       // from its description; empty if it has none (an older run)
  bool confirmed = true;  // false: "sent, unconfirmed" (syslog)
  std::vector<ReportRow> streams;
};
StatusOr<std::vector<OutputReport>> ReadReport(env::Env* env, const std::string& data_dir);

class Sink;
// Makes the sink of an output; tests pass their own to drive a fake downstream.
using SinkFactory = std::function<StatusOr<std::unique_ptr<Sink>>(const OutputOptions&)>;

class Outputs {
 public:
  // Starts one thread per output. Streams already in data_dir are picked up with their
  // newest signed size; new ones arrive through Signed(). alerts may be null.
  static StatusOr<std::unique_ptr<Outputs>> Start(env::Env* env, const std::string& data_dir,
                                                  const std::vector<OutputOptions>& outputs,
                                                  alert::Alerts* alerts,
                                                  SinkFactory factory = nullptr);
  ~Outputs();
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;

  // A checkpoint of (agent, epoch) at size was signed (and written).
  void Signed(const std::string& agent, const std::string& epoch_hex, const std::string& dir,
              uint64_t size);
  // Ends every output thread after its current downstream call; saves the cursors.
  void Stop();
  std::vector<OutputStats> stats() const;

  struct Impl;

 private:
  Outputs() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gapless::output
