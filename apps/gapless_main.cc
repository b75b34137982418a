// gapless: one binary, many subcommands. CLI11 throws on parse errors; they are caught
// here and nowhere else.
#include <CLI/CLI.hpp>

#include "spool_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"gapless — security logs that cannot go missing quietly"};
  app.require_subcommand(1);

  gapless::cli::RunFlags run_flags;
  CLI::App* run = app.add_subcommand(
      "run",
      "Demo (until the agent exists): append a demo record to a spool every interval, "
      "durably, and print the signed-checkpoint material (tree size and Merkle root)");
  run->add_option("--data-dir", run_flags.data_dir, "Directory for all data")
      ->capture_default_str();
  run->add_option("--interval", run_flags.interval_s, "Seconds between demo records")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--duration", run_flags.duration_s, "Stop after this many seconds (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

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
  if (append->parsed()) return gapless::cli::SpoolAppend(dir, quiet);
  if (inspect->parsed()) return gapless::cli::SpoolInspect(dir, records);
  return 2;
}
