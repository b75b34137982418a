// gapless: one binary, many subcommands. CLI11 throws on parse errors; they are caught
// here and nowhere else.
#include <signal.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include "agent_commands.h"
#include "collector_commands.h"
#include "gaps_commands.h"
#include "proof_commands.h"
#include "query_commands.h"
#include "spool_commands.h"
#include "status_commands.h"
#include "verify_commands.h"
#include "witness_commands.h"

int main(int argc, char** argv) {
  // A peer that closes a connection must be an error on that write, never the end of the
  // process: OpenSSL writes to the outputs' sockets with write(2), which raises SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // As many descriptors as the hard limit allows (a collector holds a few per agent and
  // per stream): the soft limit is often 1024 while the hard one is far higher.
  if (rlimit nofile{};
      ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  CLI::App app{"gapless — security logs that cannot go missing quietly"};
  app.require_subcommand(1);

  gapless::cli::RunFlags run_flags;
  CLI::App* run = app.add_subcommand(
      "run",
      "All-in-one demo on embedded defaults: an agent with syslog on 127.0.0.1 (TCP and UDP) and "
      "a collector in one process, all data under --data-dir, keys and a self-signed TLS "
      "certificate made on first start; prints each record once the collector acknowledged it");
  run->add_option("--data-dir", run_flags.data_dir, "Directory for all data")
      ->capture_default_str();
  run->add_option("--collector-port", run_flags.collector_port, "Collector port (TLS) on 127.0.0.1")
      ->capture_default_str();
  run->add_option("--port", run_flags.port, "Syslog port (TCP and UDP) on 127.0.0.1")
      ->capture_default_str();
  run->add_option("--console-port", run_flags.console_port,
                  "The console (web page and /api/) on 127.0.0.1; 0: off")
      ->capture_default_str();
  run->add_option("--metrics-port", run_flags.metrics_port,
                  "The collector's /metrics and /health on 127.0.0.1 (the agent's on the next "
                  "port); 0: off")
      ->capture_default_str();
  run->add_option("--duration", run_flags.duration_s, "Stop after this many seconds (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  std::string config_path;
  CLI::App* agent = app.add_subcommand(
      "agent",
      "Run the agent: inputs → crash-safe spool → destinations. SIGHUP reloads inputs and "
      "destinations, SIGTERM stops");
  agent->add_option("--config", config_path, "Agent configuration (TOML, docs/config.md)")
      ->required();
  CLI::App* validate = app.add_subcommand(
      "validate",
      "Check an agent's or a collector's configuration (a file with a [collector] table is a "
      "collector's) and report every error at once with its line");
  validate->add_option("config", config_path, "Agent or collector configuration file")->required();

  std::string collector_config;
  CLI::App* collector = app.add_subcommand(
      "collector",
      "Run the collector: enrolled agents over TLS 1.3 → per-stream store, acked "
      "once durable. SIGTERM stops");
  collector->add_option("--config", collector_config, "Collector configuration (TOML)")->required();
  std::string key_out, key_id;
  CLI::App* keygen = app.add_subcommand(
      "keygen", "Make an agent's Ed25519 key (file mode 0600) and print its enrollment line");
  keygen->add_option("--out", key_out, "Where to write the private key (must not exist)")
      ->required();
  keygen->add_option("--id", key_id, "Agent id for the printed line (default: host name)");
  bool key_recipient = false;
  keygen->add_flag("--recipient", key_recipient,
                   "Instead: an X25519 identity for decrypting archives; prints the recipient "
                   "to give to `gapless export --recipient`");

  CLI::App* store = app.add_subcommand("store", "Inspect a collector's store");
  store->require_subcommand(1);
  std::string store_dir;
  bool store_records = false;
  CLI::App* store_inspect =
      store->add_subcommand("inspect", "List every stream: records, LOSS records, gaps, flags");
  store_inspect->add_option("--data-dir", store_dir, "The collector's data_dir")->required();
  store_inspect->add_flag("--records", store_records, "Also print every record");

  gapless::cli::QueryFlags query_flags;
  CLI::App* query = app.add_subcommand(
      "query",
      "Print the stored records that match every filter given (docs/query.md), from a "
      "collector's data_dir (also while it runs) or an archive file. Exit 0 something "
      "matched, 1 nothing, 2 error, 3 the archive failed verification");
  query->add_option("archive", query_flags.archive,
                    "An archive file (gapless export) to query instead of a data_dir; it is "
                    "verified as it is read");
  query->add_option("--data-dir", query_flags.data_dir, "The collector's data_dir");
  query->add_option("--identity", query_flags.identity,
                    "For an encrypted archive: the identity file of one of its recipients");
  query->add_option("--key", query_flags.key,
                    "For an archive: the collector's verifier key (text or file) its seal and "
                    "checkpoints are checked with; without it they are not");
  query->add_option("--from", query_flags.from,
                    "From this time (the event's time, else when the agent read it): RFC 3339 "
                    "with Z or an offset, unix seconds, now, or relative like -2h, -30m, -7d");
  query->add_option("--to", query_flags.to, "Before this time (same forms)");
  // Repeatable options take one value each, so an archive file after them stays the
  // positional (CLI11 vectors are greedy otherwise).
  query->add_option("--agent", query_flags.agents, "Agent id glob (fnmatch); repeatable")
      ->allow_extra_args(false);
  query->add_option("--epoch", query_flags.epoch, "Only this stream epoch (hex)");
  query
      ->add_option("--source", query_flags.sources,
                   "Source glob, e.g. 'file:/var/log/auth.log' or 'syslog:*'; repeatable")
      ->allow_extra_args(false);
  query->add_option("--host", query_flags.host, "Exactly this host");
  query->add_option("--app", query_flags.app, "Exactly this app (syslog APP-NAME, journal unit)");
  query->add_option("--severity", query_flags.severity,
                    "At least this severe: emerg alert crit err warning notice info debug, or 0-7");
  query->add_option("--max-severity", query_flags.max_severity, "At most this severe");
  query
      ->add_option("--field", query_flags.fields,
                   "key=value among the structured fields; repeatable")
      ->allow_extra_args(false);
  query->add_option("--grep", query_flags.grep,
                    "A POSIX extended regular expression searched in the original bytes");
  query->add_option("--seq", query_flags.seq,
                    "Seqs A..B (inclusive), A.. or A, within each stream");
  query->add_option("--format", query_flags.format, "text, ndjson, raw, ecs or ocsf")
      ->capture_default_str();
  query->add_option("--limit", query_flags.limit, "Print at most this many (0: all)");
  query->add_flag("--reverse", query_flags.reverse, "Newest seq first (the last stream first)");
  query->add_flag("--count", query_flags.count, "Print only how many match");
  query->add_flag("--with-proof", query_flags.with_proof,
                  "With --format ndjson: each result carries its inclusion proof against the "
                  "latest signed checkpoint (\"gapless.proof\", checkable with gapless "
                  "verify-proof), or why there is none yet (\"gapless.proof_error\")");
  query->add_flag("--follow", query_flags.follow,
                  "After the stored records, keep printing new ones as they are stored (until "
                  "SIGINT/SIGTERM)");

  gapless::cli::ReconcileFlags reconcile_flags;
  CLI::App* reconcile = app.add_subcommand(
      "reconcile",
      "Compare the stored records with an export of a SIEM or another pipeline (NDJSON or CSV, "
      "gzip accepted; docs/query.md): per stream the seq ranges the export lacks, its "
      "duplicates, and its events the store does not know. Exit 0 complete, 1 missing, 2 "
      "unknown or altered events, 3 error");
  reconcile->add_option("--data-dir", reconcile_flags.data_dir, "The collector's data_dir")
      ->required();
  reconcile->add_option("--against", reconcile_flags.against, "The export file")->required();
  reconcile->add_option("--from", reconcile_flags.from,
                        "Only stored records from this time (query's forms)");
  reconcile->add_option("--to", reconcile_flags.to, "Only stored records before this time");
  reconcile->add_option("--agent", reconcile_flags.agents, "Agent id glob; repeatable");
  reconcile->add_option("--format", reconcile_flags.format, "auto, ndjson or csv")
      ->capture_default_str();
  reconcile
      ->add_option("--window", reconcile_flags.window,
                   "Also count per time window of this length (30s, 15m, 1h, 1d; 0: none), "
                   "by the record's time")
      ->capture_default_str();
  reconcile->add_flag("--json", reconcile_flags.json, "One JSON document instead of text");

  gapless::cli::ProveFlags prove_flags;
  CLI::App* prove = app.add_subcommand(
      "prove",
      "Print one record's inclusion proof against the collector's latest signed checkpoint "
      "(--seq), or the consistency proof from an older signed checkpoint to it (--old-size); "
      "JSON, docs/formats/proof.md");
  prove->add_option("--data-dir", prove_flags.data_dir, "The collector's data_dir")->required();
  prove->add_option("--agent", prove_flags.agent, "The agent id of the stream")->required();
  prove->add_option("--epoch", prove_flags.epoch,
                    "The stream's epoch (hex; needed if it has several)");
  auto* seq_opt = prove->add_option("--seq", prove_flags.seq, "The record's seq (inclusion proof)");
  prove
      ->add_option("--old-size", prove_flags.old_size,
                   "The size of an earlier signed checkpoint (consistency proof)")
      ->excludes(seq_opt);
  prove->add_flag("--witnessed", prove_flags.witnessed,
                  "Against the newest checkpoint a witness cosigned (its cosignatures in the "
                  "proof), not the newest signed");
  prove->add_option("--out", prove_flags.out, "Write the proof here instead of standard output");
  std::string proof_file, proof_key;
  CLI::App* verify_proof = app.add_subcommand(
      "verify-proof",
      "Check a proof from `gapless prove` offline: the checkpoints' signatures, then the "
      "record's inclusion or the two trees' consistency. Exit 0 valid, 1 invalid, 2 "
      "unreadable");
  verify_proof->add_option("proof", proof_file, "The proof (JSON)")->required();
  std::vector<std::string> proof_witness_keys;
  verify_proof->add_option("--witness-key", proof_witness_keys,
                           "A witness's cosigner key, or a file holding it: also require its "
                           "valid cosignature on the checkpoint(s); repeatable");
  verify_proof->add_option("--key", proof_key,
                           "The collector's verifier key, or a file holding it (a trusted copy "
                           "of data_dir/collector.vkey); without it the key carried in the "
                           "proof is used, with a warning");

  gapless::cli::VerifyFlags verify_flags;
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Check an archive, or a collector's store: every record against the signed roots, every "
      "signature, missing seqs against what the agents declared. Exit 0 clean, 1 incomplete "
      "(every missing seq declared), 2 tampered, 3 could not verify");
  verify->add_option("archive", verify_flags.archive,
                     "An archive written by gapless export (or give --data-dir)");
  verify->add_option("--data-dir", verify_flags.data_dir, "A collector's data_dir, checked live");
  verify->add_option("--agent", verify_flags.agent, "Only this agent's streams");
  verify->add_option("--epoch", verify_flags.epoch, "Only this epoch (hex)");
  verify->add_option("--key", verify_flags.key,
                     "The collector's verifier key, or a file holding it (default: "
                     "data_dir/collector.vkey, with a warning)");
  verify->add_option("--witness-key", verify_flags.witness_keys,
                     "A witness's cosigner key, or a file holding it: check its "
                     "cosignatures kept in the store (--data-dir); repeatable");
  verify->add_option("--agent-keys", verify_flags.agent_keys,
                     "The collector's enrolled_keys file (\"agent_id public-key\" lines): check "
                     "the agents' signatures on their checkpoints in the store or the archive; "
                     "without it their roots are still compared");
  verify->add_flag("--json", verify_flags.json, "One JSON document instead of text");
  verify->add_option("--identity", verify_flags.identity,
                     "For an encrypted archive: the identity file of one of its recipients");

  gapless::cli::ExportFlags export_flags;
  CLI::App* export_cmd = app.add_subcommand(
      "export",
      "Write a self-contained archive of records, with the hashes and signed checkpoint "
      "that let anyone verify it offline (docs/formats/archive.md), sealed with the "
      "collector's key; then verify it");
  export_cmd->add_option("--data-dir", export_flags.data_dir, "The collector's data_dir")
      ->required();
  export_cmd->add_option("--stream", export_flags.streams,
                         "AGENT or AGENT/EPOCH (repeatable; default all)");
  export_cmd->add_option("--from", export_flags.from, "First seq of each stream")
      ->capture_default_str();
  export_cmd->add_option("--to", export_flags.to,
                         "One past the last seq (default: all the collector has signed)");
  export_cmd->add_option("--out", export_flags.out, "The archive to write (must not exist)")
      ->required();
  export_cmd->add_option("--signing-key", export_flags.signing_key,
                         "The collector's key (default data_dir/collector.key)");
  export_cmd->add_option("--recipient", export_flags.recipients,
                         "Encrypt to this recipient (gapless-x25519:..., from gapless keygen "
                         "--recipient); repeatable");

  gapless::cli::StatusFlags status_flags;
  CLI::App* status = app.add_subcommand(
      "status",
      "What a collector knows now, from its ledger (readable while it runs): per agent "
      "stream the last heartbeat, head, stored, lag, open gaps and alerts; per source the "
      "records of the last 10 and 60 minutes; the alerts firing. Exit 0 all quiet, 1 "
      "something firing or an open gap, 2 no readable ledger");
  status->add_option("--data-dir", status_flags.data_dir, "The collector's data_dir")->required();
  status->add_flag("--json", status_flags.json, "One JSON document instead of tables");

  gapless::cli::GapsFlags gaps_flags;
  CLI::App* gaps = app.add_subcommand(
      "gaps",
      "The completeness report of a collector's store: per stream, the seqs expected and "
      "received in a time window, the missing ranges and whether and why the agent declared "
      "them lost. Exit 0 complete, 1 incomplete but all declared, 2 undeclared gaps, 3 error");
  gaps->add_option("--data-dir", gaps_flags.data_dir, "The collector's data_dir")->required();
  gaps->add_option("--agent", gaps_flags.agent, "Only this agent's streams");
  gaps->add_option("--from", gaps_flags.from,
                   "Start of the window, by the agent's observed time: RFC 3339 UTC "
                   "(2026-11-22T10:00:00Z) or unix seconds");
  gaps->add_option("--to", gaps_flags.to, "End of the window (exclusive), same forms");
  gaps->add_flag("--json", gaps_flags.json, "One JSON document instead of text");

  gapless::cli::OutputsFlags outputs_flags;
  CLI::App* outputs = app.add_subcommand(
      "outputs",
      "Per collector output and stream: what the destination should have (the newest signed "
      "size), what it confirmed, what waits and what it refused (docs/outputs.md). Exit 0 all "
      "confirmed, 1 something waits or was refused, 3 error");
  outputs->add_option("--data-dir", outputs_flags.data_dir, "The collector's data_dir")->required();
  outputs->add_flag("--json", outputs_flags.json, "One JSON document instead of text");

  gapless::cli::WitnessFlags witness_flags;
  CLI::App* witness = app.add_subcommand(
      "witness",
      "Run a C2SP tlog-witness for gapless collectors: it cosigns a collector's checkpoint "
      "only if it extends the tree it cosigned before (docs/formats/witness.md)");
  witness
      ->add_option("--data-dir", witness_flags.data_dir,
                   "Its state and key (witness.key, made on first start)")
      ->required();
  witness->add_option("--name", witness_flags.name, "Its cosigner name, e.g. witness.example/w1")
      ->required();
  witness->add_option("--listen", witness_flags.listen, "address:port")->capture_default_str();
  witness
      ->add_option("--collector", witness_flags.collectors,
                   "A collector's verifier key, or a file holding it (its "
                   "data_dir/collector.vkey), whose streams it witnesses; repeatable")
      ->required();

  CLI::App* spool = app.add_subcommand("spool", "Inspect and write a spool directory");
  spool->require_subcommand(1);
  std::string dir;
  bool quiet = false;
  CLI::App* append = spool->add_subcommand(
      "append", "Append each line of standard input as one record, then sync");
  append->add_option("--dir", dir, "Spool directory")->required();
  append->add_flag("--quiet", quiet, "Print nothing on success");
  bool records = false;
  CLI::App* inspect = spool->add_subcommand(
      "inspect", "Recover the spool and print its recovery report, state and checkpoint");
  inspect->add_option("--dir", dir, "Spool directory")->required();
  inspect->add_flag("--records", records, "Also print every record");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (run->parsed()) return gapless::cli::RunDemo(run_flags);
  if (agent->parsed()) return gapless::cli::RunAgent(config_path);
  if (collector->parsed()) return gapless::cli::RunCollector(collector_config);
  if (keygen->parsed()) {
    return key_recipient ? gapless::cli::KeygenRecipient(key_out)
                         : gapless::cli::Keygen(key_out, key_id);
  }
  if (store_inspect->parsed()) return gapless::cli::StoreInspect(store_dir, store_records);
  if (validate->parsed()) return gapless::cli::Validate(config_path);
  if (query->parsed()) return gapless::cli::Query(query_flags);
  if (reconcile->parsed()) return gapless::cli::ReconcileCommand(reconcile_flags);
  if (prove->parsed()) {
    return gapless::cli::Prove(prove_flags);
  }
  if (verify_proof->parsed())
    return gapless::cli::VerifyProof(proof_file, proof_key, proof_witness_keys);
  if (verify->parsed()) return gapless::cli::Verify(verify_flags);
  if (export_cmd->parsed()) return gapless::cli::Export(export_flags);
  if (witness->parsed()) return gapless::cli::RunWitness(witness_flags);
  if (outputs->parsed()) return gapless::cli::OutputsReport(outputs_flags);
  if (gaps->parsed()) return gapless::cli::Gaps(gaps_flags);
  if (status->parsed()) return gapless::cli::ShowStatus(status_flags);
  if (append->parsed()) return gapless::cli::SpoolAppend(dir, quiet);
  if (inspect->parsed()) return gapless::cli::SpoolInspect(dir, records);
  return 2;
}
