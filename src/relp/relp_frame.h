// RELP frames (the Reliable Event Logging Protocol of rsyslog/librelp).
//
//   frame   = txnr SP command SP datalen [SP data] LF
//   txnr    = 1*9DIGIT            ; 1..999999999, +1 per frame, wraps to 1;
//                                 ; 0 only in a server's "serverclose"
//   command = 1*32ALPHA           ; open, syslog, close, rsp, serverclose
//   datalen = 1*9DIGIT            ; length of data; 0 means no SP and no data
//
// The grammar is in docs/formats/relp.md. Parser splits a byte stream into frames; it
// keeps at most max_data_bytes of each frame's data and skips (counts) the rest, so a
// hostile length cannot make it allocate. A violation of the grammar is a protocol error:
// the parser says what and where, and stays failed (the connection must be closed; the
// sender resends what was not acknowledged).
//
// Thread contract: one Parser per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gapless::relp {

constexpr uint32_t kMaxTxnr = 999'999'999;
constexpr size_t kMaxCommandBytes = 32;
constexpr uint64_t kMaxDataLength = 999'999'999;

inline uint32_t NextTxnr(uint32_t txnr) { return txnr >= kMaxTxnr ? 1 : txnr + 1; }

struct Frame {
  uint32_t txnr = 0;
  std::string_view command;  // valid only during the callback
  std::string_view data;     // the first max_data_bytes of the data
  uint64_t data_length = 0;  // as declared by the sender
  bool truncated() const { return data.size() < data_length; }
};

class Parser {
 public:
  using Sink = std::function<void(const Frame&)>;

  explicit Parser(size_t max_data_bytes) : max_data_(max_data_bytes) {}

  // Calls sink for every complete frame in `in`. Returns InvalidArgument on a protocol
  // error (frames before it were delivered); every later call returns the same error.
  Status Feed(std::string_view in, const Sink& sink);
  // True when bytes of an incomplete frame are buffered (a stream ending here was cut).
  bool mid_frame() const { return state_ != State::kTxnr || digits_ != 0; }
  uint64_t frames() const { return frames_; }

 private:
  enum class State : uint8_t { kTxnr, kCommand, kLength, kSpaceOrEnd, kData, kTrailer };
  Status Fail(std::string what);
  void Reset();

  const size_t max_data_;
  State state_ = State::kTxnr;
  uint64_t number_ = 0;  // txnr or datalen being read
  int digits_ = 0;
  uint32_t txnr_ = 0;
  uint64_t length_ = 0;
  uint64_t remaining_ = 0;  // data bytes still to come
  std::string command_;
  std::string data_;
  uint64_t frames_ = 0;
  uint64_t offset_ = 0;  // bytes consumed so far, for error messages
  Status error_;
};

// "txnr command datalen[ data]\n".
std::string FormatFrame(uint32_t txnr, std::string_view command, std::string_view data);
void AppendFrame(uint32_t txnr, std::string_view command, std::string_view data, std::string* out);

}  // namespace gapless::relp
