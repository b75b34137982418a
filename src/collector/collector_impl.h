// The collector's internals, shared by its source files (collector.cc: start, stop, the
// committer and checkpoints; connection.cc: one agent connection and the accept loop;
// enrollment.cc: who may connect; agent_checkpoints.cc: the agent's signed trees against
// the store). Not a public header: include it only from src/collector/*.cc.
//
// Threads: the network thread (io) owns connections, streams and enrollment; the
// committer thread owns commits and signing; they meet only under dirty_mu.
#pragma once

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/accept_pacer.h"
#include "base/address.h"
#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "event/event.h"
#include "identity/identity.h"
#include "merkle/proof.h"
#include "spool/loss_record.h"
#include "store/hash_levels.h"
#include "store/layout.h"

#include "base/mutex.h"
#include "collector/collector.h"

namespace gapless::collector {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = ssl::stream<tcp::socket>;

struct Counters {
  std::atomic<uint64_t> connections{0}, connections_refused{0}, authenticated{0}, batches{0},
      records{0}, duplicates{0}, equivocations{0}, enrolled{0}, heartbeats{0},
      agent_checkpoints_verified{0}, agent_checkpoints_invalid{0}, enrolled_keys_reads{0};
  std::array<std::atomic<uint64_t>, 16> rejected{};
};

class Connection;

// A stream may have several connections at once: an agent that switched endpoints has
// its old connection still delivering what it had sent. Each batch is checked against the
// store (overlap → duplicates, hole → refused), so their order does not matter.
struct Stream {
  std::unique_ptr<store::StreamStore> store;
  std::vector<std::weak_ptr<Connection>> connections;  // those that send batches (get acks)
  std::vector<std::weak_ptr<Connection>> heartbeats;   // heartbeat-only connections
  std::string agent_id;
  std::string epoch_hex;
  std::string origin;  // of its checkpoints; set before the committer sees the stream
  // Committer thread only.
  uint64_t signed_size = 0;
  int64_t signed_at_ns = 0;
  // The agent's latest signed checkpoint, verified, waiting to be compared with the
  // store once it holds that many records. GUARDED_BY(Impl::dirty_mu).
  std::optional<checkpoint::Checkpoint> agent_checkpoint;
  std::string agent_checkpoint_note;  // GUARDED_BY(Impl::dirty_mu)
  std::string agent_checkpoint_seen;  // network thread: the last note handed over
  bool agent_log_repaired = false;    // committer thread
  // Network thread: for closing idle streams (max_open_streams).
  int64_t last_used_ns = 0;     // when a connection last attached or stored a batch
  uint64_t attaches = 0;        // connections ever attached
  bool closing = false;         // handed to the committer to be signed and closed
  uint64_t close_attaches = 0;  // `attaches` when the close was asked for
  // Network thread (issue 21): the committer reported a failed write; until it reopened
  // the store (Impl::HealStores) the network thread does not touch `store` at all: batches
  // are refused with store_failure, a welcome names broken_durable, no acks are sent.
  bool broken = false;
  uint64_t broken_durable = 0;  // the store's durable_next when it broke
  // What a welcome names: the store's next seq, or the durable one while broken.
  uint64_t welcome_next() const { return broken ? broken_durable : store->next_seq(); }
  uint64_t durable_next() const { return broken ? broken_durable : store->durable_next(); }
};

struct Collector::Impl {
  env::Env* env = nullptr;
  CollectorOptions options;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_guard;
  std::unique_ptr<ssl::context> tls;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  AcceptPacer accept_pacer{"collector"};                   // io thread
  std::vector<std::weak_ptr<Connection>> connections;      // network thread
  int64_t refusals_logged_ns = 0;                          // network thread
  uint64_t refusals_unlogged = 0;                          // network thread
  std::map<std::string, std::unique_ptr<Stream>> streams;  // network thread
  std::map<std::string, identity::PublicKey> enrolled;     // network thread
  std::string enrolled_file_state;                         // network thread
  // Network thread: when each agent started its recent new epochs (max_new_epochs_per_agent).
  std::map<std::string, std::deque<int64_t>> new_epochs;
  std::atomic<uint64_t> open_streams{0}, streams_closed{0}, epochs_refused{0};
  int64_t enrolled_read_ns = 0;  // network thread
  Counters counters;
  std::thread io_thread;
  std::thread committer;

  // The hand-over from the network thread to the committer. (A Stream's agent_checkpoint
  // fields are under it too; the analysis cannot name another object's mutex there.)
  Mutex dirty_mu;
  CondVar dirty_cv;
  std::set<Stream*> dirty GUARDED_BY(dirty_mu);
  std::set<Stream*> agent_checkpoints GUARDED_BY(dirty_mu);  // to compare
  std::vector<Stream*> close_requests GUARDED_BY(dirty_mu);  // idle: sign, then close
  std::unique_ptr<identity::SigningKey> signing_key;         // read-only after Start
  std::string key_name;
  std::set<Stream*> unsigned_streams;           // committer thread: committed, not yet checkpointed
  std::set<Stream*> waiting_agent_checkpoints;  // committer thread
  bool stop_committer GUARDED_BY(dirty_mu) = false;
  // Issue 21: stores whose write failed, reopened by the committer (what a restart would
  // do, for that stream only) with a backoff of 1 s doubling to kStoreHealMaxBackoffMs.
  struct StoreHeal {
    int64_t since_ns = 0, next_ns = 0, backoff_ms = 1000;
    uint64_t attempts = 0;
    bool ready = false;     // the network thread stopped using the store (heal_ready)
    bool reopened = false;  // reopened; healed at its first successful commit
    std::string error;      // the last heal error, logged when it changes
  };
  static constexpr int64_t kStoreHealMaxBackoffMs = 5000;
  std::map<Stream*, StoreHeal> store_heals;           // committer thread
  std::set<Stream*> heal_ready GUARDED_BY(dirty_mu);  // network thread → committer
  mutable Mutex failing_mu;                           // for stats() and /health
  std::map<std::string, std::string> failing_stores GUARDED_BY(failing_mu);  // key → error
  bool stopped = false;
  std::unique_ptr<Witnessing> witnessing;    // null without witnesses
  std::unique_ptr<Archiving> archiving;      // null without an archive destination
  std::unique_ptr<output::Outputs> outputs;  // null without [[output]]

  void Accept(tcp::acceptor* acceptor);
  // Network thread: whether a new connection from address stays within the limits.
  bool WithinConnectionLimits(const std::string& address);
  void MarkDirty(Stream* s) {
    {
      MutexLock lock(&dirty_mu);
      dirty.insert(s);
    }
    dirty_cv.Signal();
  }
  void CommitterLoop();
  // Committer thread: a commit (or a new stream's open) failed; raises store_write_failed
  // and hands the stream to the network thread to stop using its store (OnStoreBroken).
  void StoreFailed(Stream* s, const Status& st);
  // Network thread: refuses the stream's batch connections, then lets the committer heal.
  void OnStoreBroken(Stream* s, const std::string& error);
  // Committer thread: DiscardUnsynced, then StreamStore::Open, for each failed store due.
  void HealStores();
  // Committer thread: a reopened store committed: resolves store_write_failed.
  void StoreHealed(std::map<Stream*, StoreHeal>::iterator it);
  // Either thread: the failing-stores list /health reads.
  void NoteStoreFailing(const std::string& key, const std::string& error);
  StatusOr<std::string> SignAndAppend(store::StreamStore* store, const std::string& origin);
  void SignWhatWasLeftUnsigned();
  void SignCheckpoints(bool all);
  // Network thread: checks an agent checkpoint from a heartbeat (signature by the key the
  // connection authenticated with, origin) and hands it to the committer.
  void OnAgentCheckpoint(Stream* s, const identity::PublicKey& key, const std::string& note);
  // Committer thread: compares the agent's signed roots with the store's, once the store
  // holds that many records; a match is kept in dir/agent-checkpoints.
  void CompareAgentCheckpoints(std::set<Stream*>* waiting);
  void CheckpointInvalid(const Stream* s, const std::string& why, uint64_t size = 0);
  void SendAcks(Stream* s);
  // Network thread: closes every connection (at Stop).
  void CloseConnections();
  Status ReloadEnrolled();
  // Network thread. kOk, or the error code and message to reject with; *log_note gets what
  // only the collector's log may say (server paths).
  // `binding` is the connection's TLS binding, `own_cert` the certificate this connection
  // presented (the hello's server name must be one of its names).
  std::pair<wire::ErrorCode, std::string> Authenticate(const wire::Hello& h,
                                                       const std::array<uint8_t, 32>& nonce,
                                                       const wire::TlsBinding& binding,
                                                       X509* own_cert, std::string* log_note);
  // Network thread: whether enrolled_keys may have changed since it was last read (its
  // inode, size or mtime differ, or 5 s have passed): an unknown agent re-reads it only
  // then, so a stream of hellos with self-made keys cannot make the collector re-read it
  // for each one.
  bool EnrolledKeysChanged();
  bool Enroll(const wire::Hello& h);
  // Network thread: the stream of the hello, opened if need be (an idle one closed to make
  // room). kResourceExhausted past max_open_streams or max_new_epochs_per_agent.
  StatusOr<Stream*> OpenStream(const wire::Hello& h);
  // Network thread: whether the agent may start another epoch now (and counts it).
  bool NewEpochAllowed(const std::string& agent_id, const std::string& epoch_hex);
  // Network thread: asks the committer to sign and close the least recently used stream
  // without a live connection; false if there is none.
  bool CloseAnIdleStream();
  // Committer thread: commits and signs what each stream asked to close holds, then hands
  // it back to the network thread (FinishClose).
  void CloseRequested(const std::vector<Stream*>& closing);
  // Network thread: closes s unless a connection attached since it was asked (or `keep`).
  void FinishClose(Stream* s, bool keep);
  // Committer thread: signs a checkpoint of s at its committed size (if it grew). False
  // when the checkpoint could not be written.
  bool SignStream(Stream* s, int64_t now);
};

}  // namespace gapless::collector
