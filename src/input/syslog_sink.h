// Internal to src/input: turns one received syslog message into a stored event, and the
// counters every input keeps.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "input/input.h"
#include "syslog/syslog_parser.h"

namespace gapless::input {

struct Counters {
  std::atomic<uint64_t> messages{0}, bytes{0}, parse_errors{0}, truncated{0}, framing_errors{0},
      connections{0}, paused{0}, kernel_drops{0}, lost_at_stop{0}, files{0}, rotations{0},
      lost_bytes{0}, acked{0};
  Stats Snapshot() const;
};

// A message refused by a full spool, kept by the input until there is room.
struct HeldMessage {
  std::string bytes;
  uint16_t flags = 0;
  int64_t observed_ns = 0;
};

// One per connection or socket; not thread-safe (its input's thread only).
class SyslogSink {
 public:
  SyslogSink(ingest::Ingest* ingest, const std::string* source, Counters* counters)
      : ingest_(ingest), source_(source), counters_(counters) {}
  void set_peer(std::string peer) { peer_ = std::move(peer); }
  const std::string& peer() const { return peer_; }

  // Parses and appends one message. Ok: stored. kResourceExhausted: the spool is full
  // (block policy); anything else: the spool failed. In both cases nothing was stored
  // and the caller keeps the message. On Ok, *seq_end (if given) becomes the seq after the
  // stored record; it is left alone when a drop_newest spool dropped the message (its
  // LOSS record accounts for it).
  Status Store(std::string_view bytes, uint16_t flags, int64_t observed_ns,
               uint64_t* seq_end = nullptr);

 private:
  ingest::Ingest* const ingest_;
  const std::string* const source_;
  Counters* const counters_;
  std::string peer_;
  event::Event event_;  // reused: no allocation per message
  syslog::FieldStorage storage_;
};

// Writes an input_stopped LOSS record for messages an input held when it stopped.
void RecordUnstoredAtStop(ingest::Ingest* ingest, const std::string& source, uint64_t count,
                          uint64_t bytes, int64_t first_ns, int64_t last_ns, Counters* counters);

}  // namespace gapless::input
