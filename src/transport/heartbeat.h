// Heartbeater: tells a collector, every few seconds, what the agent holds — its clock,
// spool head, what each destination acknowledged, spool use and drops — on a TLS
// connection of its own (same authentication as a sender's), so the collector hears
// from an agent whose senders are stuck (the 2024 failure) and can say so.
//
// It shares nothing with the senders: its own thread, io_context and connection; the
// snapshot function it is given must read atomics only (it is called on this thread).
// Frames the collector sends (welcome, acks) are read and dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "base/status.h"
#include "spool/spool_format.h"
#include "transport/sender.h"
#include "wire/wire.h"

namespace gapless::transport {

struct HeartbeatStats {
  uint64_t sent = 0;
  uint64_t connects = 0;
  uint64_t failures = 0;
};

class Heartbeater {
 public:
  static StatusOr<std::unique_ptr<Heartbeater>> Start(
      const DestinationOptions& destination, AgentIdentity identity, const spool::Epoch& epoch,
      std::function<wire::Heartbeat()> snapshot, int64_t interval_ms = 5000,
      env::Clock* clock = nullptr);  // null: the system's
  ~Heartbeater();
  Heartbeater(const Heartbeater&) = delete;
  Heartbeater& operator=(const Heartbeater&) = delete;
  // With last_beat_ms > 0 and a welcomed connection, one last heartbeat (a fresh
  // snapshot) is sent first, waiting at most that long for it to be written. Idempotent.
  void Stop(int64_t last_beat_ms = 0);
  HeartbeatStats stats() const;

  struct Impl;

 private:
  Heartbeater() = default;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gapless::transport
