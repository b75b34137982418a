// Key arguments on the command line: wherever a verifier or cosigner key is asked for,
// the key's text ("<name>+<id>+<base64>") or the path of a file that holds it, such as a
// collector's data_dir/collector.vkey or the witness.vkey that `gapless witness` writes.
#pragma once

#include <string>

#include "base/status.h"

namespace gapless::cli {

// The key text itself when `arg` parses as a verifier key (the collector's or a
// witness's), else the contents of the file `arg` names, without trailing newlines.
// kNotFound says both were tried.
StatusOr<std::string> KeyArgument(const std::string& arg);

}  // namespace gapless::cli
