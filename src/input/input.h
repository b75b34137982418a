// Inputs: the network and file sources that feed the spool through Ingest.
//
// Every input keeps the bytes it received, pauses reading (never drops) when the spool is
// full under the block policy, and records anything it could not store as a LOSS record
// in the stream (udp_kernel_drop, file_rotated_unread, input_stopped). Inputs run on one
// Boost.Asio io_context (the agent's input thread); their handlers never block.
//
// Thread contract: Start and Stop are called on the thread that runs the io_context, or
// before it runs / after it stopped. stats() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/status.h"
#include "env/env.h"
#include "ingest/ingest.h"
#include "syslog/framer.h"

namespace boost::asio {
class io_context;
}

namespace gapless::input {

struct Stats {
  uint64_t messages = 0;      // records stored
  uint64_t bytes = 0;         // raw bytes stored
  uint64_t parse_errors = 0;  // stored raw with the parse_error flag
  uint64_t truncated = 0;     // stored cut to max_message_bytes
  uint64_t framing_errors = 0;
  uint64_t connections = 0;   // accepted so far
  uint64_t paused = 0;        // times reading paused because the spool was full
  uint64_t kernel_drops = 0;  // UDP datagrams the kernel dropped (all in LOSS records)
  uint64_t lost_at_stop = 0;  // messages read but unstored at Stop (in a LOSS record)
  uint64_t files = 0;         // files being tailed now
  uint64_t rotations = 0;     // rename or truncation rotations seen
  uint64_t lost_bytes = 0;    // file bytes gone before they were read (in LOSS records)
  uint64_t acked = 0;         // messages acknowledged to the sender once durable (RELP)
};

class Input {
 public:
  virtual ~Input() = default;
  // The source id stored in every event ("syslog:tcp:6514").
  virtual const std::string& name() const = 0;
  // Binds and starts reading. The error says which address and why.
  virtual Status Start() = 0;
  // Stops reading and closes sockets. Messages read but not yet stored (the spool was
  // full) are written down in an input_stopped LOSS record.
  virtual void Stop() = 0;
  // The bound port (useful when the configured port was 0).
  virtual uint16_t port() const = 0;
  virtual Stats stats() const = 0;
};

struct TlsServerOptions {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
  std::string ca_file;    // if set, client certificates are verified against it
  bool require_client_cert = false;
  friend bool operator==(const TlsServerOptions&, const TlsServerOptions&) = default;
};

struct SyslogOptions {
  std::string name;    // source id; default "syslog:<tcp|tls|udp>:<port>"
  std::string listen;  // "IP:port" or "[IPv6]:port"; numeric addresses only
  syslog::Framing framing = syslog::Framing::kAuto;  // TCP/TLS only
  size_t max_message_bytes = 64 * 1024;
  size_t max_connections = 1024;        // TCP/TLS only
  std::optional<TlsServerOptions> tls;  // TCP only: TLS when set
  int receive_buffer_bytes = 0;         // UDP SO_RCVBUF; 0 = kernel default
  friend bool operator==(const SyslogOptions&, const SyslogOptions&) = default;
};

struct HttpOptions {
  std::string name;              // source id; default "http:<port>"
  std::string listen;            // "IP:port"
  std::string path = "/ingest";  // where events are POSTed
  size_t max_body_bytes = 10 << 20;
  size_t max_message_bytes = 64 * 1024;
  size_t max_connections = 1024;
  std::string token_file;  // if set, requests need "Authorization: Bearer <its content>"
  std::optional<TlsServerOptions> tls;
  int64_t idle_timeout_ms = 60'000;  // a connection silent this long is closed
  friend bool operator==(const HttpOptions&, const HttpOptions&) = default;
};

enum class StartAt : uint8_t { kBeginning, kEnd };

struct FileOptions {
  std::string name;                // state file name and log prefix; default "file:<first path>"
  std::vector<std::string> paths;  // glob patterns; symlinks are followed
  StartAt start_at = StartAt::kBeginning;  // for files found at the first start only
  size_t max_line_bytes = 64 * 1024;       // longer lines are kept cut, flagged truncated
  int64_t poll_interval_ms = 200;
  // Multi-line joining: when set (a POSIX extended regex), a line that matches it starts a
  // record and every line that does not is appended to the record before it (stack
  // traces). A record ends at the next start line, after multiline_max_lines lines or
  // max_line_bytes (kept cut, flagged truncated), or when no line followed it for
  // multiline_timeout_ms.
  std::string multiline_start;
  size_t multiline_max_lines = 500;
  int64_t multiline_timeout_ms = 1000;
  friend bool operator==(const FileOptions&, const FileOptions&) = default;
};

struct JournaldOptions {
  std::string name;       // source id and state file name; default "journald[:<directory>]"
  std::string directory;  // journal files to read; empty: this machine's journal
  std::vector<std::string> matches;        // "FIELD=value" (sd_journal_add_match semantics)
  StartAt start_at = StartAt::kBeginning;  // with no saved cursor
  size_t max_message_bytes = 64 * 1024;    // an entry's export-format text, cut and flagged
  friend bool operator==(const JournaldOptions&, const JournaldOptions&) = default;
};

// Deps shared by inputs.
struct Context {
  boost::asio::io_context* io = nullptr;
  ingest::Ingest* ingest = nullptr;
  env::Clock* clock = nullptr;
  std::string state_dir;  // where inputs keep their positions (file offsets)
};

std::unique_ptr<Input> NewSyslogTcpInput(const Context& ctx, const SyslogOptions& options);
std::unique_ptr<Input> NewSyslogUdpInput(const Context& ctx, const SyslogOptions& options);
// The "drops" column of the socket with `inode` in a /proc/net/udp (or udp6) table;
// nullopt if it is not there or not a number. (Exposed for its test.)
std::optional<uint32_t> ProcNetUdpDrops(std::string_view table, uint64_t inode);
// RELP (rsyslog's omrelp), plain or TLS. A message is acknowledged ("rsp 200 OK") only
// once it is durable in the spool, so the sender keeps and resends everything else.
// Uses listen, name (default "relp:<port>"), max_message_bytes, max_connections and tls.
std::unique_ptr<Input> NewRelpInput(const Context& ctx, const SyslogOptions& options);
// HTTP(S) JSON ingest (docs/formats/http.md): 200 only once every event of the request is
// durable; 400 with what is wrong; 503 + Retry-After when the spool is full (nothing of
// that request was stored); 413 over max_body_bytes.
std::unique_ptr<Input> NewHttpInput(const Context& ctx, const HttpOptions& options);
// Tails files (docs/config.md, "file"). The read offset of each file is persisted in
// ctx.state_dir only after the lines before it are durable, so kill -9 loses nothing
// (lines durable but not yet covered by the saved offset are read again: duplicates,
// never gaps).
std::unique_ptr<Input> NewFileInput(const Context& ctx, const FileOptions& options);
// Reads the systemd journal on its own thread (sd-journal). Each entry is one event whose
// raw bytes are the entry in the journal export format; the cursor is saved in
// ctx.state_dir only once the entries before it are durable (kill -9: duplicates, never
// gaps).
std::unique_ptr<Input> NewJournaldInput(const Context& ctx, const JournaldOptions& options);
// Ok if `pattern` is a valid multiline_start (POSIX extended regex); else says why.
Status CheckMultilinePattern(const std::string& pattern);

using ::gapless::ParseListenAddress;  // base/address.h

}  // namespace gapless::input
