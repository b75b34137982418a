#include "relp/relp_frame.h"

#include <algorithm>

namespace gapless::relp {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Printable description of a byte for error messages.
std::string Describe(char c) {
  if (c >= 0x21 && c < 0x7f) return std::string("'") + c + "'";
  static const char kHex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  return std::string("0x") + kHex[u >> 4] + kHex[u & 15];
}

}  // namespace

Status Parser::Fail(std::string what) {
  error_ =
      InvalidArgumentError("RELP protocol error at byte " + std::to_string(offset_) + ": " + what);
  return error_;
}

void Parser::Reset() {
  state_ = State::kTxnr;
  number_ = 0;
  digits_ = 0;
  command_.clear();
  data_.clear();
}

Status Parser::Feed(std::string_view in, const Sink& sink) {
  if (!error_.ok()) return error_;
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    switch (state_) {
      case State::kTxnr:
      case State::kLength:
        if (IsDigit(c)) {
          if (++digits_ > 9) return Fail("a number has more than 9 digits");
          number_ = number_ * 10 + static_cast<uint64_t>(c - '0');
          break;
        }
        if (digits_ == 0) return Fail("expected a digit, got " + Describe(c));
        if (state_ == State::kTxnr) {
          if (c != ' ') return Fail("expected a space after the txnr, got " + Describe(c));
          txnr_ = static_cast<uint32_t>(number_);
          state_ = State::kCommand;
        } else {
          length_ = number_;
          number_ = 0;
          digits_ = 0;
          state_ = State::kSpaceOrEnd;
          continue;  // look at c again
        }
        number_ = 0;
        digits_ = 0;
        break;
      case State::kCommand:
        if (IsAlpha(c)) {
          if (command_.size() == kMaxCommandBytes) return Fail("command longer than 32 letters");
          command_.push_back(c);
          break;
        }
        if (c != ' ' || command_.empty()) return Fail("bad command character " + Describe(c));
        state_ = State::kLength;
        break;
      case State::kSpaceOrEnd:
        if (length_ == 0) {
          state_ = State::kTrailer;
          continue;  // c must be the LF
        }
        if (c != ' ') return Fail("expected a space before the data, got " + Describe(c));
        remaining_ = length_;
        data_.clear();
        state_ = State::kData;
        break;
      case State::kData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        const size_t room = max_data_ > data_.size() ? max_data_ - data_.size() : 0;
        data_.append(in.substr(i, std::min(n, room)));
        remaining_ -= n;
        i += n;
        offset_ += n;
        if (remaining_ == 0) state_ = State::kTrailer;
        continue;
      }
      case State::kTrailer: {
        if (c != '\n') return Fail("expected LF after the data, got " + Describe(c));
        Frame f;
        f.txnr = txnr_;
        f.command = command_;
        f.data = data_;
        f.data_length = length_;
        ++frames_;
        ++offset_;
        ++i;
        sink(f);
        Reset();
        continue;
      }
    }
    ++i;
    ++offset_;
  }
  return Status::Ok();
}

void AppendFrame(uint32_t txnr, std::string_view command, std::string_view data, std::string* out) {
  out->append(std::to_string(txnr));
  out->push_back(' ');
  out->append(command);
  out->push_back(' ');
  out->append(std::to_string(data.size()));
  if (!data.empty()) {
    out->push_back(' ');
    out->append(data);
  }
  out->push_back('\n');
}

std::string FormatFrame(uint32_t txnr, std::string_view command, std::string_view data) {
  std::string out;
  AppendFrame(txnr, command, data, &out);
  return out;
}

}  // namespace gapless::relp
