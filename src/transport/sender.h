// Sender: ships one agent's spool to one destination (a collector), with end-to-end
// acknowledgement. Wire protocol: docs/protocol.md.
//
// What it promises (transport_test.cc, tests/transport_*_test.cc):
//   - it sends only durable records and advances its spool cursor only past seqs the
//     collector acknowledged as durable, so a crash on either side loses nothing;
//   - it resumes where the collector says it stands (the welcome), so nothing is skipped
//     and what the collector already has is not stored twice;
//   - it retries forever, with capped exponential backoff and full jitter;
//   - Reconfigure and Restart, at any moment, cancel the connection and everything in
//     flight and start over from the collector's word on the new connection. They never
//     wait for the network: the 2024 deadlock had a send in flight holding what the
//     reconfiguration needed.
//
// Threads: each Sender has its own thread running its own io_context, and that thread
// owns everything in the sender (connection, window, reader, backoff). Public methods may
// be called from any thread: they post to the sender's thread and return at once (Stop
// waits for it to finish). stats() reads atomics only. No lock of the sender's is held
// across I/O — it has none.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "identity/identity.h"
#include "spool/spool.h"

namespace gapless::transport {

struct DestinationOptions {
  std::string name = "collector";  // also the name of its spool cursor
  std::string address;             // collector "IP:port"
  std::string server_name;         // TLS name the collector's certificate must carry
  std::string ca_file;             // PEM CA (or the collector's self-signed certificate)
  bool required = true;            // a required destination holds spool segments until acked
  uint32_t batch_records = 4096;
  uint32_t batch_bytes = 1u << 20;  // raw bytes per batch, before compression
  int64_t batch_delay_ms = 5;       // how long a partial batch waits for more records
  uint32_t window = 8;              // batches in flight
  int64_t backoff_initial_ms = 100;
  int64_t backoff_max_ms = 30000;
  int64_t connect_timeout_ms = 10000;
  int64_t cursor_persist_ms = 200;  // how often an acked position is written to CURSORS

  friend bool operator==(const DestinationOptions&, const DestinationOptions&) = default;
};

struct AgentIdentity {
  std::string agent_id;
  std::shared_ptr<const identity::SigningKey> key;
  std::string enroll_token;  // sent only while the collector does not know the key yet
};

struct SenderStats {
  uint64_t acked_next = 0;  // every seq below is durable at the destination
  uint64_t sent_records = 0;
  uint64_t batches = 0;
  uint64_t connects = 0;  // connections that reached the welcome
  uint64_t connect_failures = 0;
  uint64_t rejections = 0;  // error frames received
  uint64_t restarts = 0;    // Reconfigure + Restart
  bool connected = false;
  int64_t last_progress_mono_ns = 0;  // when acked_next last moved (or the sender started)
};

class Sender {
 public:
  // Registers the spool cursor and starts the thread. The spool must outlive the sender.
  // latest_checkpoint, if set, is called on the sender's thread as each batch is built and
  // returns the agent's latest signed checkpoint (or ""); a batch carries it when it
  // differs from the last one carried.
  static StatusOr<std::unique_ptr<Sender>> Start(
      spool::Spool* spool, AgentIdentity identity, DestinationOptions options,
      std::function<std::string()> latest_checkpoint = nullptr);
  ~Sender();  // Stop()
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // New endpoint / settings: the connection and everything in flight are dropped and the
  // sender reconnects at once; unacknowledged records are sent again to the new endpoint.
  void Reconfigure(const DestinationOptions& options);
  // The same with the current settings (the watchdog uses it on a stalled sender).
  void Restart();
  // Closes the connection, persists the acked cursor, joins the thread. Idempotent.
  void Stop();

  SenderStats stats() const;
  const std::string& name() const { return name_; }

  struct Impl;

 private:
  Sender() = default;
  std::string name_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gapless::transport
