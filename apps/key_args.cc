#include "key_args.h"

#include "checkpoint/note.h"
#include "env/env.h"

namespace gapless::cli {

StatusOr<std::string> KeyArgument(const std::string& arg) {
  if (checkpoint::ParseVerifierKey(arg).ok() || checkpoint::ParseCosignerKey(arg).ok()) {
    return arg;
  }
  auto text = env::ReadFileToString(env::Env::Posix(), arg);
  if (!text.ok()) {
    return NotFoundError("\"" + arg +
                         "\" is neither a key (\"<name>+<id>+<base64>\") nor a readable file "
                         "holding one: " +
                         text.status().message());
  }
  std::string key = *text;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
    key.pop_back();
  }
  return key;
}

}  // namespace gapless::cli
