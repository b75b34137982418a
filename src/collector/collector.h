// Collector: accepts agents over TLS 1.3, authenticates them (an Ed25519 signature over a
// fresh challenge, by an enrolled key), and stores each agent's stream exactly once,
// acknowledging only what is durable. Wire protocol: docs/protocol.md.
//
// Threads and what each owns:
//   - the network thread runs the io_context: every socket, the enrollment files, the
//     map of streams, and each StreamStore's owner side (Append);
//   - the committer thread runs StreamStore::Commit for streams with queued records
//     (many batches share one fsync) and then posts the acks to the network thread; it
//     also signs each growing stream's checkpoint (at most every checkpoint_interval_ms,
//     and at Stop) and offers it to the witnessing thread;
//   - with witnesses configured, the witnessing thread (witnessing.h) sends checkpoints
//     to them and keeps their cosignatures; it never blocks the other two;
//   - with an archive destination, the archiving thread (archiving.h) exports what was
//     signed into rolling archives, reading the store files only.
// They hand over through one mutex-guarded set of dirty streams, never held across I/O.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "collector/archiving.h"
#include "collector/witnessing.h"
#include "env/env.h"
#include "monitor/monitor.h"
#include "output/output.h"
#include "store/stream_store.h"
#include "wire/wire.h"

namespace gapless::collector {

struct CollectorOptions {
  std::string name = "gapless-collector";
  std::vector<std::string> listen{"127.0.0.1:7514"};  // host:port; port 0 picks one
  std::string data_dir;                               // streams under data_dir/streams
  std::string tls_cert;                               // PEM chain; required
  std::string tls_key;                                // PEM key, mode 0600; required
  // "agent_id base64-ed25519-public-key" per line, '#' comments. Re-read when an agent
  // is not found in it, so adding a line needs no restart.
  std::string enrolled_keys;
  // Optional, mode 0600: one-time tokens, one per line. An unknown agent presenting one
  // gets its key appended to enrolled_keys and the token is removed.
  std::string enroll_tokens;
  // Ed25519 key (PEM, mode 0600) that signs the collector's checkpoints of every stream
  // it stores (docs/formats/checkpoint.md). Empty: data_dir/collector.key, made on the
  // first start; its verifier key is then written to data_dir/collector.vkey.
  std::string signing_key;
  int64_t checkpoint_interval_ms = 1000;  // a growing stream is checkpointed this often
  // Witnesses each new checkpoint is sent to (collector/witnessing.h); their
  // cosignatures are kept in each stream's dir/witnessed.
  std::vector<WitnessTarget> witnesses;
  int64_t witness_retry_ms = 2000;
  // The rolling archive destination (collector/archiving.h); off while archive.dir is
  // empty.
  ArchiveDestination archive;
  // Where witnessing and archiving raise their alerts; not owned, may be null, must
  // outlive the collector.
  alert::Alerts* alerts = nullptr;
  // Fed with each stream's durable point and every new LOSS record; not owned, may be
  // null, must outlive the collector.
  monitor::Monitors* monitors = nullptr;
  uint32_t max_frame = wire::kMaxFrameBytes;
  // A connection that has not authenticated by then is closed (one that never started TLS
  // at once: no error frame can reach it).
  int64_t handshake_timeout_ms = 10000;
  // Open connections at most, in all and from one address; past either, a new connection
  // is closed as soon as it is accepted (counted, logged at most every 10 s).
  int max_connections = 512;
  int max_connections_per_address = 64;
  // Stream stores open at once (4 descriptors each). Past it, the least recently used
  // stream without a live connection is signed and closed (it reopens when its agent comes
  // back); with none idle, a new stream is refused (limit_exceeded).
  int max_open_streams = 1024;
  // New epochs one agent may start within new_epoch_window_s; past it the hello is refused
  // (limit_exceeded) and `epoch_storm` fires: a spool replaced that often is lost evidence
  // or an attack on the collector's descriptors.
  int max_new_epochs_per_agent = 10;
  int64_t new_epoch_window_s = 3600;
  store::StoreOptions store;
  // [[output]]: deliveries into downstreams (output/output.h), each on its own thread.
  std::vector<output::OutputOptions> outputs;
};

struct CollectorStats {
  uint64_t connections = 0;
  uint64_t connections_refused = 0;  // over max_connections or max_connections_per_address
  uint64_t authenticated = 0;
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t duplicates = 0;
  uint64_t equivocations = 0;
  uint64_t enrolled = 0;
  uint64_t enrolled_keys_reads = 0;  // times enrolled_keys was read (start, changes, 5 s)
  uint64_t open_streams = 0;         // stream stores open now
  uint64_t streams_closed = 0;       // idle streams closed to stay within max_open_streams
  uint64_t epochs_refused = 0;       // hellos refused past max_new_epochs_per_agent
  uint64_t heartbeats = 0;
  uint64_t agent_checkpoints_verified = 0;  // agent roots equal to the stored ones
  uint64_t agent_checkpoints_invalid = 0;   // bad signature, other stream, other root
  // Connections closed with an error frame, by wire::ErrorCode (index = code).
  std::array<uint64_t, 16> rejected{};
  WitnessingStats witnessing;
  ArchivingStats archiving;
  std::vector<output::OutputStats> outputs;
  // Stores that cannot write now ("<agent>/<epoch>" and the error): their streams are
  // refused until the collector reopened them (issue 21). /health is 503 while any is.
  std::vector<std::pair<std::string, std::string>> failing_stores;
};

// Where the store of (agent, epoch) lives under data_dir.
std::string StreamDir(const std::string& data_dir, const std::string& agent_id,
                      const spool::Epoch& epoch);

class Collector {
 public:
  static StatusOr<std::unique_ptr<Collector>> Start(env::Env* env, const CollectorOptions& o);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // The verifier key of the checkpoint signing key: "<key name>+<id>+<key>".
  const std::string& verifier_key() const { return verifier_key_; }
  // Bound ports, in the order of options.listen.
  const std::vector<uint16_t>& ports() const { return ports_; }
  // Closes every connection, commits what is queued, stops both threads. Idempotent.
  void Stop();
  CollectorStats stats() const;

  struct Impl;

 private:
  Collector() = default;
  std::unique_ptr<Impl> impl_;
  std::vector<uint16_t> ports_;
  std::string verifier_key_;
};

// The signed-note key name of a collector's checkpoints: "gapless/collector/<name>".
std::string CheckpointKeyName(const std::string& collector_name);

}  // namespace gapless::collector
