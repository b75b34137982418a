#include "wire/wire.h"

#include <zstd.h>

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace gapless::wire {
namespace {

constexpr size_t kRecordHeaderSize = 1 + 4 + 4;  // type | length | crc
constexpr size_t kBatchHeaderSize = 8 + 4 + 1 + 4 + 32;
constexpr std::string_view kHelloContext{"gapless-hello-v2\0", 17};

Status Malformed(std::string what) { return InvalidArgumentError("malformed " + what); }

void PutFixed16(std::string* dst, uint16_t v) {
  dst->push_back(static_cast<char>(v & 0xff));
  dst->push_back(static_cast<char>(v >> 8));
}

bool GetFixed16(std::string_view* in, uint16_t* v) {
  if (in->size() < 2) return false;
  *v = static_cast<uint16_t>(static_cast<uint8_t>((*in)[0]) | static_cast<uint8_t>((*in)[1]) << 8);
  in->remove_prefix(2);
  return true;
}

template <size_t N>
void PutBytes(std::string* dst, const std::array<uint8_t, N>& a) {
  dst->append(reinterpret_cast<const char*>(a.data()), N);
}

template <size_t N>
bool GetBytes(std::string_view* in, std::array<uint8_t, N>* a) {
  if (in->size() < N) return false;
  std::memcpy(a->data(), in->data(), N);
  in->remove_prefix(N);
  return true;
}

bool GetString(std::string_view* in, std::string* s) {
  std::string_view v;
  if (!GetLengthPrefixed(in, &v) || v.size() > kMaxStringBytes) return false;
  s->assign(v);
  return true;
}

void PutHelloFields(std::string* out, const Hello& h) {
  PutFixed16(out, h.version);
  PutLengthPrefixed(out, h.agent_id);
  PutBytes(out, h.public_key);
  PutBytes(out, h.epoch);
  PutLengthPrefixed(out, h.enroll_token);
  PutLengthPrefixed(out, h.server_name);
}

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kUnsupportedVersion:
      return "unsupported_version";
    case ErrorCode::kUnknownAgent:
      return "unknown_agent";
    case ErrorCode::kBadSignature:
      return "bad_signature";
    case ErrorCode::kWrongKey:
      return "wrong_key";
    case ErrorCode::kSequenceGap:
      return "sequence_gap";
    case ErrorCode::kChecksumMismatch:
      return "checksum_mismatch";
    case ErrorCode::kLeafMismatch:
      return "leaf_mismatch";
    case ErrorCode::kStoreFailure:
      return "store_failure";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kUnexpectedMessage:
      return "unexpected_message";
    case ErrorCode::kSuperseded:
      return "superseded";
    case ErrorCode::kLimitExceeded:
      return "limit_exceeded";
    case ErrorCode::kShuttingDown:
      return "shutting_down";
  }
  return "unknown";
}

void AppendFrame(std::string* out, MessageType type, std::string_view body) {
  PutFixed32(out, static_cast<uint32_t>(body.size() + 1));
  out->push_back(static_cast<char>(type));
  out->append(body);
}

StatusOr<FrameHeader> DecodeFrameHeader(std::string_view header, uint32_t max_frame) {
  if (header.size() < kFrameHeaderSize) return Malformed("frame header: too short");
  const uint32_t length = DecodeFixed32(header.data());
  const auto type = static_cast<uint8_t>(header[4]);
  if (length == 0) return Malformed("frame header: zero length");
  if (length > max_frame) {
    return Status(StatusCode::kResourceExhausted, "frame of " + std::to_string(length) +
                                                      " bytes exceeds the limit of " +
                                                      std::to_string(max_frame));
  }
  if (type < 1 || type > 7) return Malformed("frame header: unknown type " + std::to_string(type));
  return FrameHeader{static_cast<MessageType>(type), length - 1};
}

std::string EncodeChallenge(const Challenge& c) {
  std::string out;
  PutFixed16(&out, c.version);
  PutBytes(&out, c.nonce);
  PutLengthPrefixed(&out, c.collector);
  return out;
}

StatusOr<Challenge> DecodeChallenge(std::string_view in) {
  Challenge c;
  if (!GetFixed16(&in, &c.version) || !GetBytes(&in, &c.nonce) || !GetString(&in, &c.collector) ||
      !in.empty()) {
    return Malformed("challenge");
  }
  return c;
}

std::string SignedHelloBytes(const std::array<uint8_t, kNonceSize>& nonce,
                             const TlsBinding& binding, const Hello& h) {
  std::string out(kHelloContext);
  PutBytes(&out, nonce);
  PutBytes(&out, binding);
  PutHelloFields(&out, h);
  return out;
}

std::string EncodeHello(const Hello& h) {
  std::string out;
  PutHelloFields(&out, h);
  PutLengthPrefixed(&out, h.signature);
  return out;
}

StatusOr<Hello> DecodeHello(std::string_view in) {
  Hello h;
  if (!GetFixed16(&in, &h.version)) return Malformed("hello");
  if (h.version != kProtocolVersion) {
    return Status(StatusCode::kFailedPrecondition, "protocol version " + std::to_string(h.version) +
                                                       " is not supported (this "
                                                       "collector speaks " +
                                                       std::to_string(kProtocolVersion) + ")");
  }
  if (!GetString(&in, &h.agent_id) || !GetBytes(&in, &h.public_key) || !GetBytes(&in, &h.epoch) ||
      !GetString(&in, &h.enroll_token) || !GetString(&in, &h.server_name) ||
      !GetString(&in, &h.signature) || !in.empty()) {
    return Malformed("hello");
  }
  if (h.agent_id.empty()) return Malformed("hello: empty agent id");
  return h;
}

std::string EncodeWelcome(const Welcome& w) {
  std::string out;
  PutFixed64(&out, w.next_seq);
  PutFixed32(&out, w.max_frame);
  return out;
}

StatusOr<Welcome> DecodeWelcome(std::string_view in) {
  Welcome w;
  if (!GetFixed64(&in, &w.next_seq) || !GetFixed32(&in, &w.max_frame) || !in.empty()) {
    return Malformed("welcome");
  }
  if (w.max_frame < 64 * 1024) return Malformed("welcome: max_frame below 64 KiB");
  return w;
}

std::string EncodeAck(uint64_t durable_next) {
  std::string out;
  PutFixed64(&out, durable_next);
  return out;
}

StatusOr<uint64_t> DecodeAck(std::string_view in) {
  uint64_t n = 0;
  if (!GetFixed64(&in, &n) || !in.empty()) return Malformed("ack");
  return n;
}

std::string EncodeError(const ErrorMessage& e) {
  std::string out;
  PutFixed16(&out, static_cast<uint16_t>(e.code));
  PutLengthPrefixed(&out, e.message.substr(0, kMaxStringBytes));
  return out;
}

StatusOr<ErrorMessage> DecodeError(std::string_view in) {
  ErrorMessage e;
  uint16_t code = 0;
  if (!GetFixed16(&in, &code) || !GetString(&in, &e.message) || !in.empty()) {
    return Malformed("error");
  }
  e.code = static_cast<ErrorCode>(code);
  return e;
}

std::string EncodeHeartbeat(const Heartbeat& h) {
  std::string out;
  PutFixed64(&out, static_cast<uint64_t>(h.agent_wall_ns));
  PutFixed64(&out, h.head_seq);
  PutFixed64(&out, h.spool_bytes);
  PutFixed64(&out, h.spool_quota);
  PutFixed64(&out, h.dropped_records);
  const size_t n = std::min(h.destinations.size(), kMaxHeartbeatDestinations);
  PutFixed16(&out, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) {
    PutLengthPrefixed(&out, h.destinations[i].name.substr(0, kMaxStringBytes));
    PutFixed64(&out, h.destinations[i].acked_next);
  }
  PutLengthPrefixed(&out, h.checkpoint.size() <= kMaxStringBytes ? h.checkpoint : "");
  PutLengthPrefixed(&out, h.to.substr(0, kMaxStringBytes));
  return out;
}

StatusOr<Heartbeat> DecodeHeartbeat(std::string_view in) {
  Heartbeat h;
  uint64_t wall = 0;
  uint16_t n = 0;
  if (!GetFixed64(&in, &wall) || !GetFixed64(&in, &h.head_seq) ||
      !GetFixed64(&in, &h.spool_bytes) || !GetFixed64(&in, &h.spool_quota) ||
      !GetFixed64(&in, &h.dropped_records) || !GetFixed16(&in, &n) ||
      n > kMaxHeartbeatDestinations) {
    return Malformed("heartbeat");
  }
  h.agent_wall_ns = static_cast<int64_t>(wall);
  for (uint16_t i = 0; i < n; ++i) {
    Heartbeat::Destination d;
    if (!GetString(&in, &d.name) || !GetFixed64(&in, &d.acked_next)) return Malformed("heartbeat");
    h.destinations.push_back(std::move(d));
  }
  if (!GetString(&in, &h.checkpoint) || !GetString(&in, &h.to) || !in.empty()) {
    return Malformed("heartbeat");
  }
  return h;
}

BatchEncoder::BatchEncoder() : cctx_(ZSTD_createCCtx()) {
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_compressionLevel, 1);
}

BatchEncoder::~BatchEncoder() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

void BatchEncoder::Reset(uint64_t first_seq, uint8_t flags) {
  first_seq_ = first_seq;
  flags_ = flags & ~kBatchCheckpoint;
  count_ = 0;
  checkpoint_.clear();
  raw_.clear();
  leaves_.Finish();
}

bool BatchEncoder::SetCheckpoint(std::string_view note) {
  if (note.empty() || note.size() > kMaxStringBytes) return false;
  checkpoint_.clear();
  PutLengthPrefixed(&checkpoint_, note);
  flags_ |= kBatchCheckpoint;
  return true;
}

void BatchEncoder::Add(spool::FrameType type, uint32_t crc, std::string_view payload) {
  raw_.push_back(static_cast<char>(type));
  PutFixed32(&raw_, static_cast<uint32_t>(payload.size()));
  PutFixed32(&raw_, crc);
  raw_.append(payload);
  const Hash256 leaf = spool::RecordLeafHash(type, payload);
  leaves_.Update(leaf.data(), leaf.size());
  ++count_;
}

Status BatchEncoder::Finish(std::string* out) {
  if (raw_.size() > kMaxBatchRawBytes || count_ > kMaxBatchRecords) {
    return InvalidArgumentError("batch too large");
  }
  const size_t bound = ZSTD_compressBound(raw_.size());
  const size_t start = out->size();
  const size_t head = kBatchHeaderSize + checkpoint_.size();
  out->resize(start + kFrameHeaderSize + head + bound);
  char* body = out->data() + start + kFrameHeaderSize;
  EncodeFixed64(body, first_seq_);
  EncodeFixed32(body + 8, count_);
  body[12] = static_cast<char>(flags_);
  EncodeFixed32(body + 13, static_cast<uint32_t>(raw_.size()));
  const Hash256 digest = leaves_.Finish();
  std::memcpy(body + 17, digest.data(), digest.size());
  std::memcpy(body + kBatchHeaderSize, checkpoint_.data(), checkpoint_.size());
  const size_t z =
      ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), body + head, bound, raw_.data(), raw_.size());
  if (ZSTD_isError(z)) {
    out->resize(start);
    return InternalError(std::string("zstd: ") + ZSTD_getErrorName(z));
  }
  const size_t body_bytes = head + z;
  EncodeFixed32(out->data() + start, static_cast<uint32_t>(body_bytes + 1));
  (*out)[start + 4] = static_cast<char>(MessageType::kBatch);
  out->resize(start + kFrameHeaderSize + body_bytes);
  return Status::Ok();
}

BatchDecoder::BatchDecoder() : dctx_(ZSTD_createDCtx()) {}
BatchDecoder::~BatchDecoder() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

Status BatchDecoder::Decode(std::string_view body, BatchHeader* h, std::vector<WireRecord>* records,
                            std::vector<Hash256>* leaves, BatchFault* fault) {
  BatchFault unused;
  BatchFault& f = fault != nullptr ? *fault : unused;
  f = BatchFault::kMalformed;  // what every return below means unless it says otherwise
  records->clear();
  leaves->clear();
  if (body.size() < kBatchHeaderSize) return Malformed("batch: header too short");
  h->first_seq = DecodeFixed64(body.data());
  h->count = DecodeFixed32(body.data() + 8);
  h->flags = static_cast<uint8_t>(body[12]);
  h->raw_bytes = DecodeFixed32(body.data() + 13);
  std::memcpy(h->leaves_digest.data(), body.data() + 17, h->leaves_digest.size());
  if (h->count == 0 || h->count > kMaxBatchRecords) {
    return Malformed("batch: record count " + std::to_string(h->count));
  }
  if (h->raw_bytes > kMaxBatchRawBytes || h->raw_bytes < h->count * kRecordHeaderSize) {
    return Malformed("batch: raw size " + std::to_string(h->raw_bytes));
  }
  if ((h->flags & ~(kBatchGapBefore | kBatchCheckpoint)) != 0) {
    return Malformed("batch: unknown flags");
  }
  if (h->first_seq > UINT64_MAX - h->count) return Malformed("batch: seq overflow");
  std::string_view z = body.substr(kBatchHeaderSize);
  h->checkpoint.clear();
  if ((h->flags & kBatchCheckpoint) != 0 &&
      (!GetString(&z, &h->checkpoint) || h->checkpoint.empty())) {
    return Malformed("batch: checkpoint");
  }
  raw_.resize(h->raw_bytes);
  const size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), raw_.data(), raw_.size(),
                                       z.data(), z.size());
  if (ZSTD_isError(n)) return Malformed(std::string("batch: zstd: ") + ZSTD_getErrorName(n));
  if (n != h->raw_bytes) return Malformed("batch: decompressed size differs from the header");

  std::string_view in(raw_);
  records->reserve(h->count);
  leaves->reserve(h->count);
  Sha256 digest;
  for (uint32_t i = 0; i < h->count; ++i) {
    if (in.size() < kRecordHeaderSize) return Malformed("batch: record header cut short");
    const auto type = static_cast<uint8_t>(in[0]);
    const uint32_t len = DecodeFixed32(in.data() + 1);
    const uint32_t crc = DecodeFixed32(in.data() + 5);
    in.remove_prefix(kRecordHeaderSize);
    if (type != static_cast<uint8_t>(spool::FrameType::kData) &&
        type != static_cast<uint8_t>(spool::FrameType::kLoss)) {
      return Malformed("batch: record type " + std::to_string(type));
    }
    if (len > in.size()) return Malformed("batch: record length past the end");
    const std::string_view payload = in.substr(0, len);
    in.remove_prefix(len);
    if (crc32c::Value(payload.data(), payload.size()) != crc) {
      f = BatchFault::kChecksumMismatch;
      return DataLossError("CRC32C mismatch in the record with seq " +
                           std::to_string(h->first_seq + i));
    }
    const auto ftype = static_cast<spool::FrameType>(type);
    records->push_back(WireRecord{ftype, crc, payload});
    leaves->push_back(spool::RecordLeafHash(ftype, payload));
    digest.Update(leaves->back().data(), leaves->back().size());
  }
  if (!in.empty()) return Malformed("batch: bytes after the last record");
  if (digest.Finish() != h->leaves_digest) {
    f = BatchFault::kDigestMismatch;
    return DataLossError("the leaves digest of the batch at seq " + std::to_string(h->first_seq) +
                         " does not match its records");
  }
  f = BatchFault::kNone;
  return Status::Ok();
}

}  // namespace gapless::wire
