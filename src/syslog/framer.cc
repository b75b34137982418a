#include "syslog/framer.h"

#include <algorithm>

#include "event/event.h"

namespace gapless::syslog {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
constexpr size_t kMaxLengthDigits = 9;  // < 1 GB; anything longer is not a length

}  // namespace

std::string_view FramingName(Framing f) {
  switch (f) {
    case Framing::kAuto:
      return "auto";
    case Framing::kNewline:
      return "newline";
    case Framing::kOctetCounted:
      return "octet_counted";
  }
  return "unknown";
}

Framer::Framer(Framing framing, size_t max_message_bytes)
    : mode_(framing), max_(std::max<size_t>(max_message_bytes, 1)) {}

void Framer::Feed(std::string_view data, const Sink& sink) {
  if (mode_ == Framing::kAuto) {
    if (data.empty()) return;
    mode_ = IsDigit(data[0]) ? Framing::kOctetCounted : Framing::kNewline;
  }
  if (mode_ == Framing::kOctetCounted && FeedOctets(&data, sink)) return;
  FeedNewline(data, sink);
}

void Framer::EmitLine(std::string_view line, uint16_t flags, const Sink& sink) {
  if ((line.empty() || line == "\r") && flags == 0) return;  // an empty line, no message
  sink(Frame{line, flags});
}

void Framer::FeedNewline(std::string_view data, const Sink& sink) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    const std::string_view piece = data.substr(0, nl);
    data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
    if (discarding_) {  // the rest of a line already emitted truncated
      truncated_bytes_ += piece.size();
      discarding_ = nl == std::string_view::npos;
      continue;
    }
    const bool complete = nl != std::string_view::npos;
    if (buf_.empty() && complete && piece.size() <= max_) {
      EmitLine(piece, buf_flags_, sink);  // the common case: no copy
      buf_flags_ = 0;
      continue;
    }
    const size_t room = max_ - buf_.size();
    buf_.append(piece.substr(0, room));
    if (piece.size() > room) {
      truncated_bytes_ += piece.size() - room;
      ++truncated_messages_;
      sink(Frame{buf_, static_cast<uint16_t>(buf_flags_ | event::kTruncated)});
      buf_.clear();
      buf_flags_ = 0;
      discarding_ = !complete;
    } else if (complete) {
      EmitLine(buf_, buf_flags_, sink);
      buf_.clear();
      buf_flags_ = 0;
    }
  }
}

void Framer::SwitchToNewline() {
  ++framing_errors_;
  buf_ = length_digits_;
  buf_flags_ = event::kFramingError;
  length_digits_.clear();
  in_length_ = true;
  mode_ = Framing::kNewline;
}

bool Framer::FeedOctets(std::string_view* data, const Sink& sink) {
  while (!data->empty()) {
    if (in_length_) {
      const char c = (*data)[0];
      if (length_digits_.empty() && (c == '\n' || c == '\r')) {
        data->remove_prefix(1);  // stray line ends between frames, sent by some relays
      } else if (IsDigit(c) && length_digits_.size() < kMaxLengthDigits &&
                 !(length_digits_.empty() && c == '0')) {
        length_digits_.push_back(c);
        data->remove_prefix(1);
      } else if (c == ' ' && !length_digits_.empty()) {
        want_ = 0;
        for (char d : length_digits_) want_ = want_ * 10 + static_cast<uint64_t>(d - '0');
        declared_ = want_;
        length_digits_.clear();
        in_length_ = false;
        if (declared_ > max_) {  // keep the first max_ bytes, skip the rest
          ++truncated_messages_;
          truncated_bytes_ += declared_ - max_;
        }
        data->remove_prefix(1);
      } else {
        SwitchToNewline();
        return false;
      }
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(want_, data->size()));
    if (buf_.empty() && n == want_ && want_ <= max_) {
      sink(Frame{data->substr(0, n), 0});  // whole frame in this read: no copy
    } else {
      const size_t keep = std::min(n, max_ - std::min(max_, buf_.size()));
      buf_.append(data->substr(0, keep));
      if (n == want_) {
        const uint16_t flags = declared_ > max_ ? event::kTruncated : 0;
        sink(Frame{buf_, flags});
        buf_.clear();
      }
    }
    want_ -= n;
    data->remove_prefix(n);
    if (want_ == 0) in_length_ = true;
  }
  return true;
}

void Framer::Finish(const Sink& sink) {
  if (mode_ == Framing::kOctetCounted) {
    if (in_length_ && !length_digits_.empty()) {
      ++framing_errors_;
      sink(Frame{length_digits_, event::kFramingError});
    } else if (!in_length_) {
      ++truncated_messages_;
      sink(Frame{buf_, event::kTruncated});
    }
  } else if (!buf_.empty() && !discarding_) {
    EmitLine(buf_, buf_flags_, sink);
  }
  buf_.clear();
  length_digits_.clear();
  in_length_ = true;
  want_ = 0;
  discarding_ = false;
}

}  // namespace gapless::syslog
