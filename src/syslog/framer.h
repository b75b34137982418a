// Framer: splits a syslog byte stream (TCP, TLS) into messages, RFC 6587.
//
// Two framings: octet counting ("<len> <msg>") and non-transparent framing (messages
// end with LF). kAuto decides per connection from the first byte: a digit means octet
// counting (a syslog message itself starts with '<'). Nothing is dropped:
//   - a message longer than max_message_bytes is emitted cut to that size with
//     kTruncated, and the rest of it is skipped (counted in truncated_bytes());
//   - a broken octet count (not digits, too long, zero) is a framing error: the bytes are
//     emitted as a line flagged kFramingError, and the connection continues in LF mode;
//   - at end of stream an unterminated last message is emitted (kTruncated if an octet
//     count promised more).
// Empty lines (LF alone, or CR LF) carry no message and are skipped.
//
// Thread contract: one Framer per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace gapless::syslog {

enum class Framing : uint8_t { kAuto, kNewline, kOctetCounted };
std::string_view FramingName(Framing f);

class Framer {
 public:
  struct Frame {
    std::string_view bytes;  // valid only during the callback
    uint16_t flags = 0;      // event::kTruncated, event::kFramingError
  };
  // Called for each message. It cannot refuse: a caller that meets backpressure keeps
  // the frames of the current read itself and stops reading (bounded by its read size).
  using Sink = std::function<void(const Frame&)>;

  Framer(Framing framing, size_t max_message_bytes);

  // Splits data; calls sink for each complete message.
  void Feed(std::string_view data, const Sink& sink);
  // End of stream: emits what is buffered as a final message.
  void Finish(const Sink& sink);

  Framing framing() const { return mode_; }
  uint64_t truncated_messages() const { return truncated_messages_; }
  uint64_t truncated_bytes() const { return truncated_bytes_; }
  uint64_t framing_errors() const { return framing_errors_; }

 private:
  void FeedNewline(std::string_view data, const Sink& sink);
  // Consumes from the front of *data in octet mode; returns false on a framing error
  // (after switching to LF mode with the bad bytes buffered).
  bool FeedOctets(std::string_view* data, const Sink& sink);
  void EmitLine(std::string_view line, uint16_t flags, const Sink& sink);
  void SwitchToNewline();

  Framing mode_;
  const size_t max_;
  std::string buf_;  // bytes of an incomplete message
  uint16_t buf_flags_ = 0;
  bool discarding_ = false;  // LF mode: skipping the rest of an over-long line
  // Octet mode state.
  bool in_length_ = true;  // reading the decimal length
  std::string length_digits_;
  uint64_t want_ = 0;      // message bytes still to collect
  uint64_t declared_ = 0;  // the current frame's declared length
  uint64_t truncated_messages_ = 0;
  uint64_t truncated_bytes_ = 0;
  uint64_t framing_errors_ = 0;
};

}  // namespace gapless::syslog
