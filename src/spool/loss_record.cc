#include "spool/loss_record.h"

#include "base/coding.h"

namespace gapless::spool {
namespace {
constexpr uint8_t kLossVersion = 1;
constexpr size_t kFixedSize = 3 + 6 * 8 + 2;
}  // namespace

std::string_view LossReasonName(LossReason r) {
  switch (r) {
    case LossReason::kSpoolFullDropOldest:
      return "spool_full_drop_oldest";
    case LossReason::kSpoolFullDropNewest:
      return "spool_full_drop_newest";
    case LossReason::kCorruptSegment:
      return "corrupt_segment";
    case LossReason::kUdpKernelDrop:
      return "udp_kernel_drop";
    case LossReason::kFileRotatedUnread:
      return "file_rotated_unread";
    case LossReason::kInputStopped:
      return "input_stopped";
    case LossReason::kDestinationSkipped:
      return "destination_skipped";
  }
  return "unknown";
}

std::string LossRecord::Encode() const {
  std::string out;
  out.reserve(kFixedSize + detail.size());
  out.push_back(static_cast<char>(kLossVersion));
  out.push_back(static_cast<char>(reason));
  out.push_back(static_cast<char>(has_seq_range ? 1 : 0));
  PutFixed64(&out, first_seq);
  PutFixed64(&out, last_seq);
  PutFixed64(&out, record_count);
  PutFixed64(&out, bytes);
  PutFixed64(&out, static_cast<uint64_t>(time_from_unix_ns));
  PutFixed64(&out, static_cast<uint64_t>(time_to_unix_ns));
  std::string_view d(detail);
  if (d.size() > 0xffff) d = d.substr(0, 0xffff);
  out.push_back(static_cast<char>(d.size() & 0xff));
  out.push_back(static_cast<char>(d.size() >> 8));
  out.append(d);
  return out;
}

StatusOr<LossRecord> LossRecord::Decode(std::string_view in) {
  if (in.size() < kFixedSize) return DataLossError("loss record shorter than its fixed part");
  if (static_cast<uint8_t>(in[0]) != kLossVersion) {
    return InvalidArgumentError("loss record version " +
                                std::to_string(static_cast<uint8_t>(in[0])) + " not supported");
  }
  if ((static_cast<uint8_t>(in[2]) & ~1u) != 0) {
    return InvalidArgumentError("loss record has unknown flag bits set");
  }
  LossRecord r;
  r.reason = static_cast<LossReason>(in[1]);
  r.has_seq_range = (in[2] & 1) != 0;
  in.remove_prefix(3);
  uint64_t from = 0;
  uint64_t to = 0;
  GetFixed64(&in, &r.first_seq);
  GetFixed64(&in, &r.last_seq);
  GetFixed64(&in, &r.record_count);
  GetFixed64(&in, &r.bytes);
  GetFixed64(&in, &from);
  GetFixed64(&in, &to);
  r.time_from_unix_ns = static_cast<int64_t>(from);
  r.time_to_unix_ns = static_cast<int64_t>(to);
  size_t len = static_cast<uint8_t>(in[0]) | (size_t{static_cast<uint8_t>(in[1])} << 8);
  in.remove_prefix(2);
  if (in.size() != len) return DataLossError("loss record detail length mismatch");
  r.detail = std::string(in);
  return r;
}

std::string LossRecord::ToString() const {
  std::string s = "LOSS reason=";
  s += LossReasonName(reason);
  if (has_seq_range) {
    s += " seqs=" + std::to_string(first_seq) + ".." + std::to_string(last_seq);
  }
  s += " records=" + std::to_string(record_count) + " bytes=" + std::to_string(bytes);
  s += " time=" + std::to_string(time_from_unix_ns) + ".." + std::to_string(time_to_unix_ns);
  if (!detail.empty()) s += " detail=\"" + detail + "\"";
  return s;
}

}  // namespace gapless::spool
