// `gapless prove` and `gapless verify-proof`, the real binary, over a store the collector
// filled: a proof verifies offline with the collector's key; any change to it, another
// key, or a store altered after it was signed is refused.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "alert/alert.h"
#include "base/crc32c.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "collector/transport_fixture.h"
#include "env/env.h"
#include "event/event.h"
#include "ledger/ledger.h"
#include "monitor/monitor.h"
#include "spool/spool_format.h"
#include "store/layout.h"
#include "store/stream_store.h"
#include "subprocess.h"

namespace gapless::transport {
namespace {

using namespace std::chrono_literals;

class ProofCliTest : public TransportFixture {
 protected:
  // Runs the gapless binary; returns its exit code, with its output in *output.
  int Gapless(const std::vector<std::string>& args, std::string* output = nullptr) {
    const std::string log = dir_ + "/cli.log";
    std::remove(log.c_str());
    std::vector<std::string> argv = {GAPLESS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    gapless::testing::Subprocess p;
    EXPECT_TRUE(p.Start(argv, {}, "", log));
    const int status = p.Wait(60s);
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    if (output != nullptr) *output = text.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // A store of 1000 records with the collector's checkpoints; returns its verifier key.
  std::string FillStore() {
    OpenSpool();
    StartCollector();
    Sender* s = StartSender(Destination(), key_);
    AppendRecords(1000);
    EXPECT_TRUE(WaitFor([&] { return s->stats().acked_next == 1000; }, 10000));
    senders_.clear();
    const std::string vkey = collector_->verifier_key();
    collector_->Stop();
    return vkey;
  }

  // Keeps an agent checkpoint of the collector's latest signed tree in the store, signed
  // by the agent's key, as the collector keeps one that matched.
  void KeepAgentCheckpointOfTheSignedTree() {
    std::optional<checkpoint::Checkpoint> signed_tree;
    ASSERT_TRUE(
        store::ForEachCheckpoint(env::Env::Posix(), StreamDir(), [&](std::string_view text) {
          auto note = checkpoint::ParseNote(text);
          if (note.ok()) signed_tree = *checkpoint::ParseCheckpoint(note->text);
        }).ok());
    ASSERT_TRUE(signed_tree.has_value());
    signed_tree->origin =
        checkpoint::AgentOrigin("agent-1", std::filesystem::path(StreamDir()).filename().string());
    auto agent_note = checkpoint::SignNote(checkpoint::FormatCheckpoint(*signed_tree),
                                           checkpoint::AgentKeyName("agent-1"), *key_);
    ASSERT_TRUE(agent_note.ok());
    ASSERT_TRUE(
        store::AppendNoteFrame(
            env::Env::Posix(),
            store::StreamFiles(StreamDir()).Notes(store::StreamFiles::NoteLog::kAgentCheckpoints),
            *agent_note, true)
            .ok());
  }

  // `gapless verify ARGS --agent-keys <the enrolled keys file>`: exit 0, with the one
  // agent checkpoint (of all 1000 records) verified.
  void ExpectOneAgentCheckpointVerified(std::vector<std::string> args) {
    args.insert(args.begin(), "verify");
    args.insert(args.end(), {"--agent-keys", dir_ + "/enrolled"});
    std::string out;
    ASSERT_EQ(Gapless(args, &out), 0) << out;
    EXPECT_NE(out.find("1 agent checkpoints (largest size 1000), 1 agent signatures verified"),
              std::string::npos)
        << out;
  }

  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// `gapless query`, the real binary, over the store: filters combine, the count, the
// newest first, NDJSON with the provenance fields, and clear errors with exit 2.
TEST_F(ProofCliTest, QueryFindsRecordsByRegexAndSeqAndSaysWhatIsWrongWithBadFlags) {
  FillStore();
  const std::string data = copts_.data_dir;
  std::string out;
  ASSERT_EQ(Gapless({"query", "--data-dir", data, "--seq", "100..199", "--grep", "record 12[0-9] ",
                     "--count"},
                    &out),
            0)
      << out;
  EXPECT_EQ(out, "10\n");
  ASSERT_EQ(
      Gapless({"query", "--data-dir", data, "--format", "ndjson", "--reverse", "--limit", "2"},
              &out),
      0)
      << out;
  const size_t first = out.find("\"gapless.seq\":999,");
  const size_t second = out.find("\"gapless.seq\":998,");
  EXPECT_NE(first, std::string::npos) << out;
  EXPECT_NE(second, std::string::npos) << out;
  EXPECT_LT(first, second) << "newest first";
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  // Raw payloads are not events: a filter on an event field matches none of them.
  EXPECT_EQ(Gapless({"query", "--data-dir", data, "--host", "web-01"}, &out), 1) << out;
  EXPECT_EQ(Gapless({"query", "--data-dir", data, "--grep", "(unclosed"}, &out), 2);
  EXPECT_NE(out.find("not a POSIX extended regular expression"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"query", "--data-dir", data, "--from", "last tuesday"}, &out), 2);
  EXPECT_NE(out.find("RFC 3339"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"query", "--data-dir", dir_ + "/nowhere"}, &out), 2);
  EXPECT_NE(out.find("not a collector data directory"), std::string::npos) << out;
}

// `gapless reconcile`, the real binary: the store's own NDJSON export is complete; without
// one record it is incomplete (exit 1) and names the seq; with a foreign event, exit 2.
TEST_F(ProofCliTest, ReconcileAgainstTheStoresOwnExportNamesWhatWasRemoved) {
  FillStore();
  const std::string data = copts_.data_dir;
  std::string out;
  ASSERT_EQ(Gapless({"query", "--data-dir", data, "--format", "ndjson"}, &out), 0);
  std::string without;
  for (size_t at = 0; at < out.size();) {
    const size_t eol = out.find('\n', at);
    const std::string line = out.substr(at, eol - at + 1);
    at = eol + 1;
    if (line.find("\"gapless.seq\":321,") == std::string::npos) without += line;
  }
  const std::string full = dir_ + "/export.ndjson", cut = dir_ + "/cut.ndjson";
  std::ofstream(full) << out;
  std::ofstream(cut) << without;
  EXPECT_EQ(Gapless({"reconcile", "--data-dir", data, "--against", full}, &out), 0) << out;
  EXPECT_EQ(Gapless({"reconcile", "--data-dir", data, "--against", cut}, &out), 1) << out;
  EXPECT_NE(out.find("missing seqs 321\n"), std::string::npos) << out;
  std::ofstream(cut, std::ios::app) << "{\"message\":\"never passed through gapless\"}\n";
  EXPECT_EQ(Gapless({"reconcile", "--data-dir", data, "--against", cut, "--json"}, &out), 2) << out;
  EXPECT_NE(out.find("\"unknown\":1"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"reconcile", "--data-dir", data, "--against", dir_ + "/none"}, &out), 3);
}

// Receipts: every `query --with-proof` result carries an inclusion proof that verifies
// offline with `gapless verify-proof`; a byte of the record changed in it is refused.
TEST_F(ProofCliTest, QueryReceiptsVerifyOfflineAndAChangedRecordIsRefused) {
  const std::string vkey = FillStore();
  std::string out;
  ASSERT_EQ(Gapless({"query", "--data-dir", copts_.data_dir, "--seq", "500..502", "--format",
                     "ndjson", "--with-proof"},
                    &out),
            0)
      << out;
  std::vector<std::string> lines;
  for (size_t at = 0; at < out.size();) {
    const size_t eol = out.find('\n', at);
    lines.push_back(out.substr(at, eol - at));
    at = eol == std::string::npos ? out.size() : eol + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  const std::string key = "\"gapless.proof\":";
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t at = line.find(key);
    ASSERT_NE(at, std::string::npos) << line;
    const std::string proof = line.substr(at + key.size(), line.size() - 1 - at - key.size());
    const std::string path = dir_ + "/receipt.json";
    std::ofstream(path) << proof;
    ASSERT_EQ(Gapless({"verify-proof", path, "--key", vkey}, &out), 0) << out << "\n" << proof;
    EXPECT_NE(out.find("OK: seq " + std::to_string(500 + i)), std::string::npos) << out;
    std::string bad = proof;
    const size_t leaf = bad.find("\"leaf_input\": \"");
    ASSERT_NE(leaf, std::string::npos) << proof;
    char& c = bad[leaf + 20];
    c = c == 'A' ? 'B' : 'A';
    std::ofstream(path) << bad;
    EXPECT_EQ(Gapless({"verify-proof", path, "--key", vkey}, &out), 1) << out;
  }
  EXPECT_EQ(Gapless({"query", "--data-dir", copts_.data_dir, "--with-proof"}, &out), 2);
  EXPECT_NE(out.find("needs --format ndjson"), std::string::npos) << out;
}

TEST_F(ProofCliTest, AProofVerifiesOfflineAndAnyChangeToItIsRefused) {
  const std::string vkey = FillStore();
  const std::string proof = dir_ + "/proof.json";
  std::string out;
  ASSERT_EQ(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "777",
                     "--out", proof},
                    &out),
            0)
      << out;
  ASSERT_EQ(Gapless({"verify-proof", proof, "--key", vkey}, &out), 0) << out;
  EXPECT_NE(out.find("OK: seq 777 of stream agent-1/"), std::string::npos) << out;

  // Another key under the same name is refused.
  auto other = identity::SigningKey::Generate();
  ASSERT_TRUE(other.ok());
  const std::string other_vkey = checkpoint::FormatVerifierKey(
      collector::CheckpointKeyName(copts_.name), (*other)->public_key());
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", other_vkey}, &out), 1) << out;
  EXPECT_NE(out.find("not signed by"), std::string::npos) << out;

  // Change one character of each value that matters: refused each time.
  const std::string good = Read(proof);
  int refused = 0, tried = 0;
  for (const std::string& field :
       {std::string("\"seq\": 7"), std::string("\"leaf_input\": \"A"),
        std::string("\"tree_size\": 1"), std::string("\"inclusion_path\": [\""),
        std::string("\"checkpoint\": \"gapless/")}) {
    const size_t at = good.find(field);
    ASSERT_NE(at, std::string::npos) << field;
    std::string bad = good;
    char& c = bad[at + field.size() + 1];
    c = c == '1' ? '2' : (c == 'A' ? 'B' : '1');
    std::ofstream(proof) << bad;
    ++tried;
    if (Gapless({"verify-proof", proof, "--key", vkey}, &out) == 1) ++refused;
    EXPECT_NE(out.find("INVALID"), std::string::npos) << field << "\n" << out;
  }
  EXPECT_EQ(refused, tried);
}

TEST_F(ProofCliTest, AStoreAlteredAfterItWasSignedIsNotProven) {
  FillStore();
  // Rewrite one stored leaf: the store no longer matches what its collector signed.
  const std::string leaves = StreamDir() + "/leaves";
  {
    std::fstream f(leaves, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 * 10);
    f.put('\x5a');
  }
  std::string out;
  EXPECT_EQ(
      Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "3"}, &out),
      1);
  EXPECT_NE(out.find("altered"), std::string::npos) << out;
  EXPECT_EQ(
      Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "nobody", "--seq", "3"}, &out),
      1);
  EXPECT_NE(out.find("no stream of agent"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "5000"},
                    &out),
            1);
  EXPECT_NE(out.find("not covered"), std::string::npos) << out;
}

// Two signed heads, 400 and 1000 records: the consistency proof between them verifies
// offline; a proof whose path was changed is refused; once a stored leaf is rewritten,
// prove refuses.
TEST_F(ProofCliTest, AConsistencyProofShowsTheNewerTreeExtendsTheOlderUnchanged) {
  OpenSpool();
  for (uint64_t upto : {400, 1000}) {
    StartCollector();
    Sender* s = StartSender(Destination(), key_);
    AppendRecords(upto - spool_->next_seq());
    ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == upto; }, 10000));
    senders_.clear();
    collector_->Stop();  // signs a checkpoint of exactly `upto`
  }
  const std::string vkey = collector_->verifier_key();
  const std::string proof = dir_ + "/consistency.json";
  std::string out;
  ASSERT_EQ(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--old-size",
                     "400", "--out", proof},
                    &out),
            0)
      << out;
  ASSERT_EQ(Gapless({"verify-proof", proof, "--key", vkey}, &out), 0) << out;
  EXPECT_NE(out.find("size 1000 of stream agent-1/"), std::string::npos) << out;
  EXPECT_NE(out.find("extends the tree of size 400 unchanged"), std::string::npos) << out;

  std::string bad = Read(proof);
  const size_t at = bad.find("\"consistency_path\": [\"") + 21;
  bad[at] = bad[at] == 'A' ? 'B' : 'A';
  std::ofstream(proof) << bad;
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", vkey}, &out), 1) << out;
  EXPECT_NE(out.find("INVALID"), std::string::npos) << out;

  EXPECT_EQ(
      Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--old-size", "401"},
              &out),
      1);
  EXPECT_NE(out.find("no checkpoint of size 401"), std::string::npos) << out;
  EXPECT_NE(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--old-size",
                     "400", "--seq", "3"},
                    &out),
            0);

  {  // rewrite leaf 900 (read as a leaf: no complete 256-leaf tile holds it)
    std::fstream f(StreamDir() + "/leaves", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 * 900);
    f.put('\x5a');
  }
  EXPECT_EQ(
      Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--old-size", "400"},
              &out),
      1);
  EXPECT_NE(out.find("altered"), std::string::npos) << out;
}

// `gapless witness` (the real binary) cosigns what the collector signs; `prove --witnessed`
// carries the cosignature and `verify-proof --witness-key` requires it.
TEST_F(ProofCliTest, AWitnessedProofCarriesTheWitnessCosignature) {
  const std::string wdir = dir_ + "/witness";
  const std::string log = dir_ + "/witness.log";
  auto collector_key = identity::SigningKey::Load(copts_.signing_key);
  ASSERT_TRUE(collector_key.ok());
  const std::string collector_vkey = checkpoint::FormatVerifierKey(
      collector::CheckpointKeyName(copts_.name), (*collector_key)->public_key());
  gapless::testing::Subprocess witness;
  ASSERT_TRUE(
      witness.Start({GAPLESS_BINARY, "witness", "--data-dir", wdir, "--name", "witness.test/w1",
                     "--listen", "127.0.0.1:0", "--collector", collector_vkey},
                    {}, "", log));
  std::string port;
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string text = Read(log);
        const size_t at = text.find("on http://127.0.0.1:");
        if (at == std::string::npos) return false;
        port = text.substr(at + 20, text.find('/', at + 20) - at - 20);
        return true;
      },
      10000))
      << Read(log);
  std::string wkey = Read(wdir + "/witness.vkey");
  while (!wkey.empty() && wkey.back() == '\n') wkey.pop_back();
  copts_.witnesses.push_back({"http://127.0.0.1:" + port + "/add-checkpoint", wkey, "", 5000});
  const std::string vkey = FillStore();
  witness.Signal(SIGTERM);
  EXPECT_EQ(witness.Wait(10s), 0);

  const std::string proof = dir_ + "/witnessed.json";
  std::string out;
  ASSERT_EQ(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "999",
                     "--witnessed", "--out", proof},
                    &out),
            0)
      << out;
  ASSERT_EQ(Gapless({"verify-proof", proof, "--key", vkey, "--witness-key", wkey}, &out), 0) << out;
  EXPECT_NE(out.find("cosigned by witness.test/w1 at "), std::string::npos) << out;
  // Another witness's key: not cosigned by it.
  auto other = identity::SigningKey::Generate();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", vkey, "--witness-key",
                     checkpoint::FormatCosignerKey("witness.test/w1", (*other)->public_key())},
                    &out),
            1);
  EXPECT_NE(out.find("not cosigned by"), std::string::npos) << out;
}

// `gapless gaps`: a drop_oldest outage is reported as declared loss with its reason
// (exit 1); a store segment removed afterwards is an undeclared gap (exit 2); a window
// before everything has nothing in it (exit 0).
TEST_F(ProofCliTest, GapsReportsDeclaredLossesAndUndeclaredGaps) {
  ASSERT_NO_FATAL_FAILURE(OpenOverfullDropOldestSpool());
  const uint64_t n = spool_->next_seq();
  copts_.store.segment_bytes = 32 << 10;
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == n; }, 20000));
  senders_.clear();
  collector_->Stop();
  std::string out;
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir}, &out), 1) << out;
  EXPECT_NE(out.find("incomplete (declared)"), std::string::npos) << out;
  EXPECT_NE(out.find("declared lost: spool_full_drop_oldest"), std::string::npos) << out;
  EXPECT_EQ(out.find("NOT declared"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir, "--json"}, &out), 1) << out;
  EXPECT_NE(out.find("\"declared\": true, \"reason\": \"spool_full_drop_oldest\""),
            std::string::npos)
      << out;
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir, "--to", "2001-01-01T00:00:00Z"}, &out),
            0)
      << out;
  EXPECT_NE(out.find("no records in the window"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir, "--from", "yesterday"}, &out), 3);

  // Remove the store's last segment but one: its seqs are gone and nobody declared them.
  auto segments = store::ListSegments(env::Env::Posix(), StreamDir());
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 3u);
  std::filesystem::remove(StreamDir() + "/" + std::prev(segments->end(), 2)->second);
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir}, &out), 2) << out;
  EXPECT_NE(out.find("NOT declared by the agent"), std::string::npos) << out;
}

// `gapless status` reads the ledger the monitors write, while the collector runs: the
// stream with what it stored and the sources' counts (exit 0); after a declared loss,
// the alert and exit 1; with no ledger, exit 2 and what to check.
TEST_F(ProofCliTest, StatusShowsStreamsSourcesAndFiringAlertsFromTheLedger) {
  std::string out;
  EXPECT_EQ(Gapless({"status", "--data-dir", dir_ + "/nowhere"}, &out), 2) << out;
  EXPECT_NE(out.find("data_dir of a collector"), std::string::npos) << out;

  std::filesystem::create_directories(copts_.data_dir);
  alert::AlertOptions ao;
  ao.journal = copts_.data_dir + "/alerts.jsonl";
  auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
  ASSERT_TRUE(alerts.ok());
  auto ledger = ledger::Ledger::Open(copts_.data_dir + "/ledger.db");
  ASSERT_TRUE(ledger.ok());
  monitor::Monitors monitors(alerts->get(), env::Env::Posix()->clock(), {}, ledger->get());
  copts_.monitors = &monitors;
  copts_.alerts = alerts->get();
  OpenSpool();
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  for (int i = 0; i < 40; ++i) {
    event::Event e;
    e.source = "syslog:udp:514";
    e.observed_unix_ns = env::Env::Posix()->clock()->NowNanos();
    e.raw = "a message";
    std::string payload;
    event::EncodeEvent(e, &payload);
    ASSERT_TRUE(spool_->Append(payload).ok());
  }
  ASSERT_TRUE(spool_->Sync().ok());
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 40; }, 10000));
  ASSERT_TRUE(WaitFor(
      [&] {
        monitors.Tick();
        auto c = (*ledger)->Read(0);
        return c.ok() && !c->streams.empty() && c->streams[0].stored == 40;
      },
      10000));
  const std::string stream = "agent-1/" + store::EpochHex(spool_->epoch());
  ASSERT_EQ(Gapless({"status", "--data-dir", copts_.data_dir}, &out), 0) << out;
  EXPECT_NE(out.find(stream), std::string::npos) << out;
  EXPECT_NE(out.find("agent-1 syslog:udp:514"), std::string::npos) << out;
  EXPECT_NE(out.find("0 alert(s) firing"), std::string::npos) << out;

  monitors.OnDeclaredLoss("agent-1", store::EpochHex(spool_->epoch()), 3, 9, "test_reason");
  monitors.Tick();
  ASSERT_EQ(Gapless({"status", "--data-dir", copts_.data_dir, "--json"}, &out), 1) << out;
  EXPECT_NE(out.find("\"stored\": 40"), std::string::npos) << out;
  EXPECT_NE(out.find("\"name\": \"declared_loss\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"last_10_min\": 40"), std::string::npos) << out;
  collector_->Stop();  // before the monitors go
}

// `gapless verify` on the collector's store: clean (exit 0); after one byte of a stored
// record changes, tampered (exit 2) and it says where.
TEST_F(ProofCliTest, VerifyExitStatusSaysCleanOrTampered) {
  const std::string vkey = FillStore();
  std::string out;
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey}, &out), 0) << out;
  EXPECT_NE(out.find(": clean"), std::string::npos) << out;
  EXPECT_NE(out.find("1000 records"), std::string::npos) << out;
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey, "--json"}, &out), 0);
  EXPECT_NE(out.find("\"verdict\": \"clean\""), std::string::npos) << out;
  // The agent's own checkpoint of the same tree: checked with the enrolled keys file.
  KeepAgentCheckpointOfTheSignedTree();
  ExpectOneAgentCheckpointVerified({"--data-dir", copts_.data_dir, "--key", vkey});
  std::string segment;
  for (const auto& e : std::filesystem::directory_iterator(StreamDir())) {
    if (e.path().extension() == ".seg") segment = e.path().string();
  }
  ASSERT_FALSE(segment.empty());
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x7f');
  }
  EXPECT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey}, &out), 2) << out;
  EXPECT_NE(out.find("TAMPERED"), std::string::npos) << out;
  EXPECT_NE(out.find("PROBLEM: "), std::string::npos) << out;
  EXPECT_EQ(Gapless({"verify", "--data-dir", dir_ + "/nowhere"}, &out), 3) << out;
}

// Records stored but never signed (a crash between the store's commit and the signing,
// and an agent that never comes back): verify says they are not yet provable, and the
// next start of the collector signs them.
TEST_F(ProofCliTest, RecordsStoredButNotSignedAreSaidAndSignedAtTheNextStart) {
  const std::string vkey = FillStore();
  {
    auto st = store::StreamStore::Open(env::Env::Posix(), StreamDir(), spool_->epoch(), {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    std::vector<std::string> payloads(50);
    std::vector<store::Record> records;
    std::vector<Hash256> leaves;
    for (size_t i = 0; i < payloads.size(); ++i) {
      const std::string text = "stored after the last checkpoint " + std::to_string(i);
      event::Event e;  // its fields are views: of `text`, alive while it is encoded
      e.raw = e.message = text;
      event::EncodeEvent(e, &payloads[i]);
    }
    for (const std::string& p : payloads) {
      records.push_back(store::Record{spool::FrameType::kData, crc32c::Value(p), p});
      leaves.push_back(spool::RecordLeafHash(spool::FrameType::kData, p));
    }
    ASSERT_TRUE((*st)->Append(store::BatchPosition{1000, false}, records, leaves).ok());
    ASSERT_TRUE((*st)->Commit().ok());
  }
  std::string out;
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey}, &out), 0) << out;
  EXPECT_NE(out.find("NOT YET PROVABLE: 50 records (seqs 1000-1049)"), std::string::npos) << out;
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey, "--json"}, &out), 0);
  EXPECT_NE(out.find("\"unsigned_records\": 50"), std::string::npos) << out;
  // The collector starts (no agent comes): it signs what it holds.
  StartCollector();
  collector_->Stop();
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey}, &out), 0) << out;
  EXPECT_EQ(out.find("NOT YET PROVABLE"), std::string::npos) << out;
  EXPECT_NE(out.find("(largest size 1050)"), std::string::npos) << out;
  EXPECT_NE(out.find(": clean"), std::string::npos) << out;
}

// The collector wrote its store's format version; a store of a format this gapless does
// not know is refused by every reader with a message that names it, never misread.
TEST_F(ProofCliTest, AStoreOfAnotherFormatIsRefusedByEveryReader) {
  const std::string vkey = FillStore();
  const store::Layout layout(copts_.data_dir);
  auto written = env::ReadFileToString(env::Env::Posix(), layout.FormatFile());
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*written, "gapless-store 1\n");
  ASSERT_TRUE(
      env::WriteFileAtomically(env::Env::Posix(), layout.FormatFile(), "gapless-store 2\n").ok());
  std::string out;
  EXPECT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey}, &out), 3) << out;
  EXPECT_NE(out.find("format 2"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"gaps", "--data-dir", copts_.data_dir}, &out), 3) << out;
  EXPECT_NE(out.find("format 2"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"store", "inspect", "--data-dir", copts_.data_dir}, &out), 1) << out;
  EXPECT_NE(out.find("format 2"), std::string::npos) << out;
  EXPECT_NE(
      Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "3"}, &out),
      0)
      << out;
  EXPECT_NE(out.find("format 2"), std::string::npos) << out;
}

// `gapless validate` checks a collector's file with the collector's own parser: every
// problem at once with its line, and OK with what it found for a good one.
TEST_F(ProofCliTest, ValidateChecksACollectorFileWithEveryErrorAtOnce) {
  const std::string bad = dir_ + "/bad-collector.toml";
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), bad,
                                       "[collector]\n"
                                       "name = \"c1\"\n"
                                       "listen = \"collector.example:7514\"\n"
                                       "chekpoint_interval_ms = 500\n")
                  .ok());
  std::string out;
  EXPECT_EQ(Gapless({"validate", bad}, &out), 1) << out;
  EXPECT_NE(out.find(bad + ":4:1: unknown key \"chekpoint_interval_ms\""), std::string::npos)
      << out;
  EXPECT_NE(out.find(bad + ":3:10: listen address"), std::string::npos) << out;
  EXPECT_NE(out.find("needs tls_cert and tls_key"), std::string::npos) << out;
  EXPECT_NE(out.find("needs enrolled_keys"), std::string::npos) << out;

  const std::string good = dir_ + "/collector.toml";
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), good,
                                       "[collector]\n"
                                       "name = \"c1\"\n"
                                       "data_dir = \"/var/lib/c1\"\n"
                                       "tls_cert = \"/etc/c1/tls.crt\"\n"
                                       "tls_key = \"/etc/c1/tls.key\"\n"
                                       "enrolled_keys = \"/etc/c1/enrolled\"\n")
                  .ok());
  EXPECT_EQ(Gapless({"validate", good}, &out), 0) << out;
  EXPECT_NE(out.find("OK (collector c1, data_dir /var/lib/c1"), std::string::npos) << out;
  // An output's files are checked as far as they can be without reaching the downstream:
  // a HEC token others can read, a CA file that is not there.
  const std::string token = dir_ + "/hec.token";
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), token, "secret-token\n").ok());
  ::chmod(token.c_str(), 0644);
  const std::string with_outputs = dir_ + "/collector-outputs.toml";
  ASSERT_TRUE(
      env::WriteFileAtomically(env::Env::Posix(), with_outputs,
                               "[collector]\nname = \"c1\"\ndata_dir = \"/var/lib/c1\"\n"
                               "tls_cert = \"/etc/c1/tls.crt\"\ntls_key = \"/etc/c1/tls.key\"\n"
                               "enrolled_keys = \"/etc/c1/enrolled\"\n"
                               "[[output]]\nname = \"splunk\"\ntype = \"splunk_hec\"\n"
                               "url = \"https://splunk.example:8088\"\ntoken_file = \"" +
                                   token +
                                   "\"\n[[output]]\nname = \"siem\"\ntype = \"syslog\"\n"
                                   "address = \"siem.example:6514\"\ntls = true\nca_file = \"" +
                                   dir_ + "/no-such-ca.pem\"\n")
          .ok());
  EXPECT_EQ(Gapless({"validate", with_outputs}, &out), 1) << out;
  EXPECT_NE(out.find("output \"splunk\": " + token + " has mode 0644"), std::string::npos) << out;
  EXPECT_NE(out.find("output \"siem\": ca_file " + dir_ + "/no-such-ca.pem cannot be read"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("secret-token"), std::string::npos) << "no secret in messages";
  ::chmod(token.c_str(), 0600);
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), dir_ + "/no-such-ca.pem", "x").ok());
  EXPECT_EQ(Gapless({"validate", with_outputs}, &out), 0) << out;
  // An agent's file is still checked as an agent's.
  const std::string agent = dir_ + "/agent.toml";
  ASSERT_TRUE(
      env::WriteFileAtomically(env::Env::Posix(), agent, "[agent]\nid = \"a1\"\ncolour = 1\n")
          .ok());
  EXPECT_EQ(Gapless({"validate", agent}, &out), 1) << out;
  EXPECT_NE(out.find(agent + ":3:1: unknown key \"colour\" in [agent]"), std::string::npos) << out;
}

// A verifier key is taken as its text or as the file that holds it, wherever one is asked
// for; a key argument that is neither says so (issue 16, item 4).
TEST_F(ProofCliTest, KeysAreTakenAsTextOrAsTheFileThatHoldsThem) {
  const std::string vkey = FillStore();
  const std::string vkey_file = dir_ + "/trusted.vkey";
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), vkey_file, vkey + "\n").ok());
  std::string out;
  ASSERT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", vkey_file}, &out), 0) << out;
  EXPECT_NE(out.find(": clean"), std::string::npos) << out;
  const std::string proof = dir_ + "/proof.json";
  ASSERT_EQ(Gapless({"prove", "--data-dir", copts_.data_dir, "--agent", "agent-1", "--seq", "5",
                     "--out", proof},
                    &out),
            0)
      << out;
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", vkey_file}, &out), 0) << out;
  EXPECT_NE(out.find("OK: seq 5"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", vkey}, &out), 0) << out;  // the text still
  const std::string missing = dir_ + "/no-such.vkey";
  EXPECT_EQ(Gapless({"verify", "--data-dir", copts_.data_dir, "--key", missing}, &out), 3) << out;
  EXPECT_NE(out.find("neither a key"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"verify-proof", proof, "--key", missing}, &out), 2) << out;
  EXPECT_NE(out.find("neither a key"), std::string::npos) << out;
}

// `gapless export` writes an archive and verifies it; `gapless verify FILE` checks it
// offline with the collector's key; a changed byte makes it tampered.
TEST_F(ProofCliTest, ExportedArchiveVerifiesOfflineAndAChangedByteIsTampering) {
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), dir_ + "/collector/collector.vkey",
                                       FillStore() + "\n")
                  .ok());
  ASSERT_TRUE(
      std::filesystem::copy_file(dir_ + "/collector.key", copts_.data_dir + "/collector.key"));
  const std::string vkey = Read(copts_.data_dir + "/collector.vkey");
  const std::string archive = dir_ + "/out.gla";
  std::string out;
  ASSERT_EQ(Gapless({"export", "--data-dir", copts_.data_dir, "--from", "100", "--to", "900",
                     "--out", archive},
                    &out),
            0)
      << out;
  EXPECT_NE(out.find("800 records"), std::string::npos) << out;
  ASSERT_EQ(Gapless({"verify", archive, "--key", vkey.substr(0, vkey.size() - 1)}, &out), 0) << out;
  EXPECT_NE(out.find("clean, seal verified"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"verify", archive}, &out), 3) << "an archive needs --key";
  // A whole-stream archive carries the agent's checkpoint; --agent-keys checks its signature.
  KeepAgentCheckpointOfTheSignedTree();
  const std::string whole = dir_ + "/whole.gla";
  ASSERT_EQ(Gapless({"export", "--data-dir", copts_.data_dir, "--out", whole}, &out), 0) << out;
  ExpectOneAgentCheckpointVerified({whole, "--key", vkey.substr(0, vkey.size() - 1)});
  {
    std::fstream f(archive, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3000);
    f.put('\x01');
  }
  EXPECT_EQ(Gapless({"verify", archive, "--key", vkey.substr(0, vkey.size() - 1)}, &out), 2) << out;
  EXPECT_NE(out.find("PROBLEM"), std::string::npos) << out;
}

// `gapless query FILE.gla`: an archive answers a query as the store it came from does
// (filters, the newest first with a limit), also encrypted (with --identity); a changed
// byte makes it exit 3 and say the results cannot be trusted.
TEST_F(ProofCliTest, QueryOnAnArchiveAnswersAsTheStoreDoesAndRefusesATamperedOne) {
  std::string vkey = FillStore();
  const std::string data = copts_.data_dir;
  ASSERT_TRUE(
      env::WriteFileAtomically(env::Env::Posix(), data + "/collector.vkey", vkey + "\n").ok());
  ASSERT_TRUE(std::filesystem::copy_file(dir_ + "/collector.key", data + "/collector.key"));
  std::string out, recipient;
  ASSERT_EQ(Gapless({"keygen", "--recipient", "--out", dir_ + "/id"}, &out), 0) << out;
  recipient = out.substr(out.rfind("gapless-x25519:"));
  recipient = recipient.substr(0, recipient.find('\n'));
  const std::string plain = dir_ + "/q.gla", sealed = dir_ + "/qe.gla";
  ASSERT_EQ(Gapless({"export", "--data-dir", data, "--out", plain}, &out), 0) << out;
  ASSERT_EQ(
      Gapless({"export", "--data-dir", data, "--out", sealed, "--recipient", recipient}, &out), 0)
      << out;
  const std::vector<std::vector<std::string>> filters = {
      {"--seq", "100..199", "--grep", "record 1[2-4][0-9] ", "--format", "ndjson"},
      {"--reverse", "--limit", "3", "--format", "ndjson"},
      {"--grep", "record 9", "--format", "raw"},
  };
  for (const auto& f : filters) {
    std::vector<std::string> from_store = {"query", "--data-dir", data};
    from_store.insert(from_store.end(), f.begin(), f.end());
    std::string want;
    ASSERT_EQ(Gapless(from_store, &want), 0) << want;
    ASSERT_FALSE(want.empty());
    std::vector<std::string> from_archive = {"query", plain, "--key", vkey};
    from_archive.insert(from_archive.end(), f.begin(), f.end());
    ASSERT_EQ(Gapless(from_archive, &out), 0) << out;
    // stderr (the verification line) is in the same log: the records must be there, in
    // the same order.
    EXPECT_NE(out.find(want), std::string::npos) << out << "\nwanted\n" << want;
    std::vector<std::string> encrypted = {"query", sealed,       "--key",
                                          vkey,    "--identity", dir_ + "/id"};
    encrypted.insert(encrypted.end(), f.begin(), f.end());
    ASSERT_EQ(Gapless(encrypted, &out), 0) << out;
    EXPECT_NE(out.find(want), std::string::npos) << out;
  }
  EXPECT_EQ(Gapless({"query", plain, "--key", vkey, "--count"}, &out), 0);
  EXPECT_NE(out.find("verified (clean), seal checked"), std::string::npos) << out;
  EXPECT_NE(out.find("1000\n"), std::string::npos) << out;
  // --limit stops the reading, and the command says the archive was not checked to its end.
  EXPECT_EQ(Gapless({"query", plain, "--key", vkey, "--limit", "2"}, &out), 0) << out;
  EXPECT_NE(out.find("not verified to its end"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;  // 2 records, 1 notice
  // The archive after a repeatable option is still the archive.
  EXPECT_EQ(Gapless({"query", "--agent", "agent-1", plain, "--key", vkey, "--count"}, &out), 0)
      << out;
  EXPECT_NE(out.find("1000\n"), std::string::npos) << out;
  // Without the identity: a clear error.
  EXPECT_EQ(Gapless({"query", sealed, "--key", vkey}, &out), 2);
  EXPECT_NE(out.find("--identity"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"query", plain, "--data-dir", data}, &out), 2);
  EXPECT_NE(out.find("either --data-dir"), std::string::npos) << out;
  EXPECT_EQ(Gapless({"query", plain, "--with-proof", "--format", "ndjson"}, &out), 2);
  {
    std::fstream f(plain, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3000);
    const int c = f.peek();
    f.seekp(3000);
    f.put(static_cast<char>(c ^ 1));
  }
  EXPECT_EQ(Gapless({"query", plain, "--key", vkey, "--count"}, &out), 3) << out;
  EXPECT_NE(out.find("FAILED verification"), std::string::npos) << out;
  // Without a key the damage is still found (a section's checksum).
  EXPECT_EQ(Gapless({"query", plain, "--count"}, &out), 3) << out;
  EXPECT_NE(out.find("signatures NOT checked"), std::string::npos) << out;
}

}  // namespace
}  // namespace gapless::transport
