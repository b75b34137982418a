// The file output: one record per line, appended and fsynced before the records count
// as delivered. Past max_file_bytes the file is renamed to <path>.<UTC time> (the rename
// synced) and a new one begun, so a forwarder reading files sees logrotate's pattern.
#include "base/log.h"
#include "event/event.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

class FileSink final : public Sink {
 public:
  FileSink(env::Env* env, const OutputOptions& o) : env_(env), o_(o) {}

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    if (file_ == nullptr) RETURN_IF_ERROR(Open());
    uint64_t bytes = 0;
    for (const Item* item : items) bytes += item->body.size() + 1;
    if (file_->Size() > 0 && file_->Size() + bytes > o_.max_file_bytes) RETURN_IF_ERROR(Rotate());
    std::string chunk;
    chunk.reserve(bytes);
    for (const Item* item : items) {
      chunk += item->body;
      chunk += '\n';
    }
    Status s = file_->Append(chunk);
    if (s.ok()) s = file_->Sync();
    if (!s.ok()) {
      // What reached the file may be there twice after the retry: at-least-once.
      file_.reset();
      return Status(s.code(), "file output " + o_.path + ": " + s.message());
    }
    results->assign(items.size(), ItemResult{ItemResult::State::kDelivered, ""});
    return Status::Ok();
  }

 private:
  Status Open() {
    const bool existed = env_->FileExists(o_.path);
    auto f = env_->NewAppendableFile(o_.path);
    if (!f.ok()) {
      return Status(f.status().code(),
                    "file output: cannot open " + o_.path + ": " + f.status().message());
    }
    file_ = std::move(*f);
    // A new file's name must be durable too before its records count.
    if (!existed) RETURN_IF_ERROR(env_->SyncDir(env::DirName(o_.path)));
    return Status::Ok();
  }

  Status Rotate() {
    RETURN_IF_ERROR(file_->Close());
    file_.reset();
    const std::string base = o_.path + "." + event::FormatUnixNanos(env_->clock()->NowNanos());
    std::string to = base;
    for (int n = 1; env_->FileExists(to); ++n) to = base + "-" + std::to_string(n);
    RETURN_IF_ERROR(env_->RenameFile(o_.path, to));
    RETURN_IF_ERROR(env_->SyncDir(env::DirName(o_.path)));
    LogInfo("output " + o_.name + ": rotated " + o_.path + " to " + to);
    return Open();
  }

  env::Env* const env_;
  const OutputOptions o_;
  std::unique_ptr<env::WritableFile> file_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewFileSink(env::Env* env, const OutputOptions& o) {
  return std::unique_ptr<Sink>(new FileSink(env, o));
}

}  // namespace gapless::output
