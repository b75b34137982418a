// gapless: one binary, many subcommands. CLI11 throws on parse errors; they are caught
// here and nowhere else.
#include <CLI/CLI.hpp>

#include "agent_commands.h"
#include "spool_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"gapless — security logs that cannot go missing quietly"};
  app.require_subcommand(1);

  gapless::cli::RunFlags run_flags;
  CLI::App* run = app.add_subcommand(
      "run",
      "All-in-one demo on embedded defaults: an agent with syslog on 127.0.0.1 (TCP and UDP) "
      "storing into a crash-safe spool under --data-dir, printing each record once durable");
  run->add_option("--data-dir", run_flags.data_dir, "Directory for all data")
      ->capture_default_str();
  run->add_option("--port", run_flags.port, "Syslog port (TCP and UDP) on 127.0.0.1")
      ->capture_default_str();
  run->add_option("--duration", run_flags.duration_s, "Stop after this many seconds (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  std::string config_path;
  CLI::App* agent = app.add_subcommand(
      "agent", "Run the agent: inputs → crash-safe spool. SIGHUP reloads inputs, SIGTERM stops");
  agent->add_option("--config", config_path, "Agent configuration (TOML, docs/config.md)")
      ->required();
  CLI::App* validate = app.add_subcommand(
      "validate", "Check an agent configuration and report every error with its line");
  validate->add_option("config", config_path, "Agent configuration file")->required();

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
  if (validate->parsed()) return gapless::cli::Validate(config_path);
  if (append->parsed()) return gapless::cli::SpoolAppend(dir, quiet);
  if (inspect->parsed()) return gapless::cli::SpoolInspect(dir, records);
  return 2;
}
