// The agent ↔ collector wire protocol, version 1 (docs/protocol.md): frame encoding and
// the messages, with zstd-compressed batches of spool records. Pure functions over bytes,
// so every decoder can be fuzzed (fuzz/wire_fuzzer.cc); the connections live in
// src/transport and src/collector.
//
// frame := length u32 | type u8 | body        (length counts type and body)
// Every decoder checks every length against what is left and against the limits below,
// and returns kInvalidArgument with a reason for anything malformed; none trusts a size
// before checking it.
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "identity/identity.h"
#include "spool/spool_format.h"

namespace gapless::wire {

inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr size_t kFrameHeaderSize = 5;
// Largest frame either side accepts (type + body). A batch is cut well below it.
inline constexpr uint32_t kMaxFrameBytes = 8u << 20;
// The longest string a message field may hold (agent id, token, signature, names).
inline constexpr size_t kMaxStringBytes = 4096;
// The largest hello body there can be: version, four strings with their length prefixes
// (agent id, enrollment token, server name, signature), the public key and the epoch. The
// collector allows no larger frame before a connection has authenticated.
inline constexpr uint32_t kMaxHelloBytes = 2 + 4 * (5 + kMaxStringBytes) + 32 + 16;
// Largest decompressed batch; also bounds the zstd output buffer.
inline constexpr uint32_t kMaxBatchRawBytes = 32u << 20;
inline constexpr uint32_t kMaxBatchRecords = 1u << 20;
inline constexpr size_t kNonceSize = 32;

enum class MessageType : uint8_t {
  kChallenge = 1,  // collector → agent, first message on a connection
  kHello = 2,      // agent → collector: identity and signature over the challenge
  kWelcome = 3,    // collector → agent: authenticated; where to resume
  kBatch = 4,      // agent → collector: records
  kAck = 5,        // collector → agent: every seq below N is durable
  kError = 6,      // either way: why the connection is being closed
  kHeartbeat = 7,  // agent → collector, after the welcome, on its own connection
};

enum class ErrorCode : uint16_t {
  kMalformed = 1,
  kUnsupportedVersion = 2,
  kUnknownAgent = 3,
  kBadSignature = 4,
  kWrongKey = 5,
  kSequenceGap = 6,
  kChecksumMismatch = 7,
  kLeafMismatch = 8,
  kStoreFailure = 9,
  kTooLarge = 10,
  kUnexpectedMessage = 11,
  kSuperseded = 12,  // a newer connection of the same stream took over
  kShuttingDown = 13,
  kLimitExceeded = 14,  // a collector limit (open streams, new epochs); retried later
};
std::string_view ErrorCodeName(ErrorCode code);

struct Challenge {
  uint16_t version = kProtocolVersion;
  std::array<uint8_t, kNonceSize> nonce{};
  std::string collector;  // the collector's name, for messages
};

struct Hello {
  uint16_t version = kProtocolVersion;
  std::string agent_id;
  identity::PublicKey public_key{};
  spool::Epoch epoch{};
  std::string enroll_token;  // empty unless enrolling a new key with a one-time token
  std::string server_name;   // the TLS name the agent verified the collector's certificate by
  std::string signature;     // over SignedHelloBytes(challenge nonce, TLS binding, this)
};

// The connection's TLS exporter value (RFC 8446 section 7.5, label kTlsBindingLabel, no
// context): both ends of one TLS session compute the same 32 bytes, and no other session
// has them. See wire/tls_binding.h.
inline constexpr size_t kTlsBindingSize = 32;
using TlsBinding = std::array<uint8_t, kTlsBindingSize>;
inline constexpr std::string_view kTlsBindingLabel = "EXPORTER-gapless-hello";

struct Welcome {
  uint64_t next_seq = 0;  // the collector holds every seq below (durable or about to be)
  uint32_t max_frame = kMaxFrameBytes;
};

struct ErrorMessage {
  ErrorCode code = ErrorCode::kMalformed;
  std::string message;
};

// The agent's state every few seconds, sent on a connection of its own (transport/
// heartbeat.h) so that it arrives while the senders are stuck. docs/protocol.md.
inline constexpr size_t kMaxHeartbeatDestinations = 64;
struct Heartbeat {
  int64_t agent_wall_ns = 0;  // the agent's clock when it was sent
  uint64_t head_seq = 0;      // one past the spool's newest durable record
  uint64_t spool_bytes = 0;
  uint64_t spool_quota = 0;
  uint64_t dropped_records = 0;  // by the spool's full policy, since the spool was made
  struct Destination {
    std::string name;
    uint64_t acked_next = 0;
    friend bool operator==(const Destination&, const Destination&) = default;
  };
  std::vector<Destination> destinations;
  // The agent's latest signed checkpoint of its spool (a C2SP signed note over
  // "gapless/agent/<id>/<epoch>"), or empty.
  std::string checkpoint;
  // The agent's name of the destination this heartbeat goes to, so that the collector
  // can tell its own acked seq from the others' (destination_stalled, docs/alerts.md).
  std::string to;
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// One spool record on the wire: type, the unmasked CRC32C of the payload as the spool
// computed it, and the payload.
struct WireRecord {
  spool::FrameType type = spool::FrameType::kData;
  uint32_t crc = 0;
  std::string_view payload;
};

inline constexpr uint8_t kBatchGapBefore = 1;   // the seqs between the collector's next and
                                                // first_seq are gone from the agent's spool
inline constexpr uint8_t kBatchCheckpoint = 2;  // the agent's latest signed checkpoint
                                                // (length-prefixed) precedes the records

struct BatchHeader {
  uint64_t first_seq = 0;
  uint32_t count = 0;
  uint8_t flags = 0;
  uint32_t raw_bytes = 0;
  // SHA-256 over the Merkle leaf hashes of the records, in order: the collector recomputes
  // it from what it received.
  Hash256 leaves_digest{};
  // With kBatchCheckpoint: the agent's signed checkpoint of its spool (a C2SP signed note,
  // at most 4096 bytes), as in Heartbeat::checkpoint.
  std::string checkpoint;
};

// --- framing ---
void AppendFrame(std::string* out, MessageType type, std::string_view body);
struct FrameHeader {
  MessageType type = MessageType::kError;
  uint32_t body_bytes = 0;
};
// Decodes the kFrameHeaderSize bytes of a frame header.
StatusOr<FrameHeader> DecodeFrameHeader(std::string_view header, uint32_t max_frame);

// --- messages (bodies, without the frame header) ---
std::string EncodeChallenge(const Challenge& c);
StatusOr<Challenge> DecodeChallenge(std::string_view body);
// The bytes an agent signs: a context string, the challenge nonce, the TLS session's
// binding, and every field of the hello except the signature (the server name included) —
// so a signature is good for one connection only, and a collector that relays another's
// challenge over its own TLS session gets a hello that does not verify there.
std::string SignedHelloBytes(const std::array<uint8_t, kNonceSize>& nonce,
                             const TlsBinding& binding, const Hello& h);
std::string EncodeHello(const Hello& h);
StatusOr<Hello> DecodeHello(std::string_view body);
std::string EncodeWelcome(const Welcome& w);
StatusOr<Welcome> DecodeWelcome(std::string_view body);
std::string EncodeAck(uint64_t durable_next);
StatusOr<uint64_t> DecodeAck(std::string_view body);
std::string EncodeError(const ErrorMessage& e);
StatusOr<ErrorMessage> DecodeError(std::string_view body);
std::string EncodeHeartbeat(const Heartbeat& h);
StatusOr<Heartbeat> DecodeHeartbeat(std::string_view body);

// Builds batch bodies. Reusable; one thread.
class BatchEncoder {
 public:
  BatchEncoder();
  ~BatchEncoder();
  BatchEncoder(const BatchEncoder&) = delete;
  BatchEncoder& operator=(const BatchEncoder&) = delete;

  void Reset(uint64_t first_seq, uint8_t flags);
  // Carries the agent's signed checkpoint in this batch (kBatchCheckpoint). A note longer
  // than 4096 bytes is not carried; false then.
  bool SetCheckpoint(std::string_view note);
  void Add(spool::FrameType type, uint32_t crc, std::string_view payload);
  uint32_t count() const { return count_; }
  size_t raw_bytes() const { return raw_.size(); }
  // Compresses (zstd) and writes the whole frame (header included) to *out.
  Status Finish(std::string* out);

 private:
  void* cctx_;  // ZSTD_CCtx
  uint64_t first_seq_ = 0;
  uint8_t flags_ = 0;
  uint32_t count_ = 0;
  std::string checkpoint_;
  std::string raw_;
  Sha256 leaves_;
};

// What a batch body that fails to decode has wrong, for callers to branch on (never on
// the message's words). The collector maps each to an ErrorCode in one table.
enum class BatchFault : uint8_t {
  kNone,
  kMalformed,         // framing, a size, a flag, zstd, a record type
  kChecksumMismatch,  // a record's CRC32C
  kDigestMismatch,    // the leaves digest over the records
};

// Decodes batch bodies. Records point into the decoder's buffer and stay valid until the
// next Decode. Reusable; one thread.
class BatchDecoder {
 public:
  BatchDecoder();
  ~BatchDecoder();
  BatchDecoder(const BatchDecoder&) = delete;
  BatchDecoder& operator=(const BatchDecoder&) = delete;

  // Checks framing, sizes, every record's CRC32C and the leaves digest.
  //   kInvalidArgument  malformed (message says what)
  //   kDataLoss         a CRC or the leaves digest does not match
  // With fault: set to what was wrong (kNone on success).
  Status Decode(std::string_view body, BatchHeader* header, std::vector<WireRecord>* records,
                std::vector<Hash256>* leaves, BatchFault* fault = nullptr);

 private:
  void* dctx_;  // ZSTD_DCtx
  std::string raw_;
};

}  // namespace gapless::wire
