// Tailing files. Polls (every poll_interval_ms) so rotation, truncation and symlink
// changes are seen the same way on every filesystem.
//
// Positions: `offset` is the next byte to read; every line before it was appended to the
// spool. Each line is appended with the offset after it as the input's spool position
// (Spool::Append with a PositionUpdate), and every group commit writes the latest one
// behind the lines it writes: whatever survives a kill -9 in the spool, the position that
// survives with it says exactly where those lines end, so a restart resumes right after
// the last stored line (no duplicates, no gaps). A commit cut short by the kill can leave
// lines on disk without the frame that would follow them, so each line also carries its
// position in the record itself (the field gapless.file_position: "<input tag>
// <dev>:<ino> <end offset>[ skip]", atomic with the line under the frame's CRC); at start
// the records after the last position frame are read and the last of each file wins. The state file
// keeps `durable` (the offset whose lines are all durable), for files the spool has no position of
// (a new spool, or one written by an older version). Rotation by rename: the old file stays open
// and is read to its end, then kept open for a grace period in case its writer has not reopened
// yet. Truncation (copytruncate): reading restarts at 0; bytes known to be unread are written down
// as a LOSS record. A file that vanished while the agent was down with unread bytes: LOSS record
// too.
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <regex.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "base/log.h"
#include "base/sha256.h"
#include "input/input.h"
#include "input/syslog_sink.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;

constexpr int64_t kRotateGraceNs = 2'000'000'000;
constexpr size_t kMinReadBytes = 256 * 1024;
constexpr size_t kMaxBytesPerPoll = 4 << 20;  // per file, so one file cannot starve others

using FileId = std::pair<uint64_t, uint64_t>;  // (device, inode)

// The field each line's record carries its position in (see the top of this file).
constexpr std::string_view kPositionField = "gapless.file_position";

std::string Hex(const Hash256& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : h) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

Status CompileMultiline(const std::string& pattern, regex_t* re) {
  const int rc = ::regcomp(re, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
  if (rc == 0) return Status::Ok();
  char why[256];
  ::regerror(rc, re, why, sizeof(why));
  return InvalidArgumentError("multiline_start \"" + pattern +
                              "\" is not a valid POSIX extended "
                              "regular expression: " +
                              why);
}

struct Saved {  // one line of the state file
  std::string path;
  uint64_t durable = 0;
  uint64_t size = 0;  // file size when last seen
};

struct File {
  std::string path;
  std::string source;
  std::string position_key;  // its key among the spool's positions
  FileId id;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;      // at the last poll
  bool skipping = false;  // inside an over-long line already stored cut
  // Multi-line: the record starting at pending_offset could not be completed since
  // pending_since_ns (its end is not known until the next start line or the timeout).
  uint64_t pending_offset = UINT64_MAX;
  int64_t pending_since_ns = 0;
  int64_t rotated_ns = 0;  // when the path stopped naming this file (0: it still does)
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

class FileInput final : public Input {
 public:
  FileInput(const Context& ctx, const FileOptions& options)
      : ctx_(ctx), options_(options), timer_(*ctx.io), alive_(std::make_shared<bool>(true)) {
    name_ = options.name.empty() ? "file:" + (options.paths.empty() ? "" : options.paths[0])
                                 : options.name;
    std::string safe;
    for (char c : name_) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    state_path_ = env::JoinPath(ctx.state_dir, safe + ".offsets");
    input_tag_ = Hex(Sha256::Digest(name_)).substr(0, 8);
    buf_.resize(std::max(kMinReadBytes, 2 * options.max_line_bytes));
  }
  ~FileInput() override {
    *alive_ = false;
    if (multiline_) ::regfree(&start_re_);
  }

  const std::string& name() const override { return name_; }
  uint16_t port() const override { return 0; }
  Stats stats() const override { return counters_.Snapshot(); }

  Status Start() override {
    if (options_.paths.empty()) return InvalidArgumentError(name_ + ": no paths to tail");
    if (!options_.multiline_start.empty()) {
      RETURN_IF_ERROR(CompileMultiline(options_.multiline_start, &start_re_));
      multiline_ = true;
    }
    const bool have_state = LoadState();
    ReadPositionsOfUncoveredRecords();
    DiscoverFiles(/*first=*/!have_state);
    AccountForVanished();
    from_records_.clear();
    WatchDirectories();
    Poll();
    return Status::Ok();
  }

  void Stop() override {
    stopping_ = true;
    timer_.cancel();
    if (notify_) {
      boost::system::error_code ignored;
      notify_->close(ignored);
    }
    SaveState();
    files_.clear();
  }

 private:
  // --- state file: "gapless-file-offsets 1" then "dev ino durable size path" lines ---
  bool LoadState() {
    StatusOr<std::string> text = env::ReadFileToString(env::Env::Posix(), state_path_);
    if (!text.ok()) return false;
    size_t pos = text->find('\n');
    if (text->substr(0, pos) != "gapless-file-offsets 1") {
      LogError(name_ + ": " + state_path_ +
               " is not a state file this version reads; files "
               "are read from the beginning (duplicates possible, nothing skipped)");
      return false;
    }
    while (pos != std::string::npos && pos + 1 < text->size()) {
      const size_t end = text->find('\n', pos + 1);
      const std::string line = text->substr(pos + 1, end - pos - 1);
      pos = end;
      unsigned long long dev = 0, ino = 0, durable = 0, size = 0;
      int consumed = 0;
      if (std::sscanf(line.c_str(), "%llu %llu %llu %llu %n", &dev, &ino, &durable, &size,
                      &consumed) != 4) {
        continue;
      }
      saved_[{dev, ino}] = Saved{line.substr(static_cast<size_t>(consumed)), durable, size};
    }
    return true;
  }

  void SaveState() {
    if (!state_dirty_) return;
    std::string text = "gapless-file-offsets 1\n";
    for (const auto& [id, s] : saved_) {
      text += std::to_string(id.first) + " " + std::to_string(id.second) + " " +
              std::to_string(s.durable) + " " + std::to_string(s.size) + " " + s.path + "\n";
    }
    if (Status st = env::WriteFileAtomically(env::Env::Posix(), state_path_, text); !st.ok()) {
      LogError(name_ + ": saving file offsets: " + st.ToString());
      return;
    }
    state_dirty_ = false;
  }

  // --- discovery and rotation ---
  std::set<std::string> Glob() {
    std::set<std::string> out;
    for (const std::string& pattern : options_.paths) {
      glob_t g{};
      if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) out.insert(g.gl_pathv[i]);
      }
      ::globfree(&g);
    }
    return out;
  }

  void DiscoverFiles(bool first) {
    const int64_t now = ctx_.clock->NowNanos();
    std::set<std::string> seen_paths;
    for (const std::string& path : Glob()) {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      const FileId id{st.st_dev, st.st_ino};
      seen_paths.insert(path);
      bool known = false;
      for (auto& f : files_) {
        if (f->id == id) known = true;
        if (f->path == path && f->id != id && f->rotated_ns == 0) {
          f->rotated_ns = now;  // the path names a new file now: rename rotation
          counters_.rotations.fetch_add(1, std::memory_order_relaxed);
        }
      }
      if (!known) Open(path, id, static_cast<uint64_t>(st.st_size), first);
    }
    for (auto& f : files_) {  // deleted, or renamed to a name the patterns do not match
      if (f->rotated_ns == 0 && seen_paths.count(f->path) == 0) {
        f->rotated_ns = now;
        counters_.rotations.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  // Opens `path` for tailing. `label` (default: path) is the configured name it was
  // found under; a file already renamed away (found through inotify) is opened rotated.
  void Open(const std::string& path, const FileId& id, uint64_t size, bool first,
            const std::string& label = "", bool rotated = false) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      LogWarning(name_ + ": cannot open " + path + ": " + std::strerror(errno));
      return;
    }
    auto f = std::make_unique<File>();
    f->path = label.empty() ? path : label;
    f->source = "file:" + f->path;
    if (rotated) f->rotated_ns = ctx_.clock->NowNanos();
    f->id = id;
    f->position_key = PositionKey(id);
    f->fd = fd;
    f->size = size;
    auto it = saved_.find(id);
    if (it != saved_.end()) {
      f->offset = it->second.durable;
      if (size < f->offset) {  // truncated while we were not running
        RecordLoss(*f, it->second.size > f->offset ? it->second.size - f->offset : 0,
                   "truncated while the agent was stopped");
        f->offset = 0;
      }
    } else if (first && options_.start_at == StartAt::kEnd) {
      f->offset = size;
    }
    // The spool's own position of this file wins when it is ahead of the state file: it
    // covers exactly the lines the spool holds.
    bool from_spool = false;
    if (auto p = SpoolPosition(id);
        p && p->offset <= size && (it == saved_.end() || p->offset >= it->second.durable)) {
      from_spool = p->offset != f->offset || p->skipping;
      f->offset = p->offset;
      f->skipping = p->skipping;
    }
    saved_[id] = Saved{f->path, f->offset, size};
    state_dirty_ = true;
    LogInfo(name_ + ": tailing " + path + " from byte " + std::to_string(f->offset) +
            (from_spool ? " (the spool's position: just after the last stored line)" : ""));
    files_.push_back(std::move(f));
    counters_.files.store(files_.size(), std::memory_order_relaxed);
  }

  // State entries for files that are nowhere to be found: gone while we were down.
  void AccountForVanished() {
    for (auto it = saved_.begin(); it != saved_.end();) {
      bool open = false;
      for (auto& f : files_) open = open || f->id == it->first;
      if (open) {
        ++it;
        continue;
      }
      uint64_t done = it->second.durable;
      if (auto p = SpoolPosition(it->first)) done = std::max(done, p->offset);
      if (it->second.size > done) {
        File gone;
        gone.source = "file:" + it->second.path;
        RecordLoss(gone, it->second.size - done,
                   "rotated away or deleted while the agent was stopped");
      }
      ctx_.ingest->spool()->ForgetPosition(PositionKey(it->first));
      it = saved_.erase(it);
      state_dirty_ = true;
    }
  }

  // Writes a file_rotated_unread LOSS record for bytes known to be gone unread. With no
  // known count there is nothing to state (copytruncate cannot tell whether lines were
  // written between the last read and the truncation): that is logged instead.
  void RecordLoss(const File& f, uint64_t bytes, const std::string& why) {
    if (bytes == 0) {
      LogWarning(name_ + ": " + f.source + " " + why +
                 "; no unread bytes are known. Lines "
                 "written just before a truncation cannot be detected: prefer rotation by "
                 "rename (logrotate create) over copytruncate");
      return;
    }
    spool::LossRecord loss;
    loss.reason = spool::LossReason::kFileRotatedUnread;
    loss.bytes = bytes;
    loss.time_from_unix_ns = loss.time_to_unix_ns = ctx_.clock->NowNanos();
    loss.detail = f.source + ": " + why;
    counters_.lost_bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (StatusOr<uint64_t> r = ctx_.ingest->AppendLoss(loss); !r.ok()) {
      LogError(name_ + ": could not record a loss (" + loss.detail + "): " + r.status().ToString());
    } else {
      LogWarning(name_ + ": LOSS recorded: " + loss.detail);
    }
  }

  // --- inotify: react at once, and follow a file renamed before a poll saw it ---
  void WatchDirectories() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      LogWarning(name_ + ": inotify unavailable (" + std::strerror(errno) + "); polling only");
      return;
    }
    notify_ = std::make_unique<asio::posix::stream_descriptor>(*ctx_.io, fd);
    std::set<std::string> dirs;
    for (const std::string& pattern : options_.paths) {
      const std::string dir = env::DirName(pattern);
      if (dir.find_first_of("*?[") != std::string::npos) continue;  // polled only
      dirs.insert(dir);
    }
    for (const std::string& dir : dirs) {
      const int wd =
          ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY);
      if (wd < 0) {
        LogWarning(name_ + ": cannot watch " + dir + " (" + std::strerror(errno) + "); polled");
      } else {
        watch_dirs_[wd] = dir;
      }
    }
    notify_buf_.resize(64 * 1024);
    ReadNotifications();
  }

  // Waits for events without reading them, so that every read is ours: a Scan can then
  // take the renames the kernel has queued (DrainNotifications) before it reads a file.
  void ReadNotifications() {
    notify_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, alive = alive_](const boost::system::error_code& ec) {
                          if (ec || !*alive || stopping_) return;
                          if (DrainNotifications()) Scan();  // at once, not at the next poll
                          ReadNotifications();
                        });
  }

  bool Matches(const std::string& path) const {
    for (const std::string& pattern : options_.paths) {
      if (::fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
    }
    return false;
  }

  void HandleNotifications(const char* buf, size_t n) {
    for (size_t pos = 0; pos + sizeof(inotify_event) <= n;) {
      inotify_event ev{};
      std::memcpy(&ev, buf + pos, sizeof(ev));
      const std::string name(buf + pos + sizeof(ev), ::strnlen(buf + pos + sizeof(ev), ev.len));
      pos += sizeof(ev) + ev.len;
      auto dir = watch_dirs_.find(ev.wd);
      if (dir == watch_dirs_.end() || name.empty()) continue;
      const std::string path = env::JoinPath(dir->second, name);
      if (ev.mask & IN_MOVED_FROM) moved_from_[ev.cookie] = path;
      if (ev.mask & IN_MOVED_TO) FollowRename(ev.cookie, path);
    }
  }

  // Handles every event the kernel has queued (the descriptor is non-blocking); true if
  // there was any.
  bool DrainNotifications() {
    if (notify_ == nullptr) return false;
    bool any = false;
    for (;;) {
      const ssize_t n = ::read(notify_->native_handle(), notify_buf_.data(), notify_buf_.size());
      if (n <= 0) return any;
      any = true;
      HandleNotifications(notify_buf_.data(), static_cast<size_t>(n));
    }
  }

  // A file matching the patterns was renamed to `to`. If we never opened it (it lived at
  // its name between two polls), open it under its new name now.
  void FollowRename(uint32_t cookie, const std::string& to) {
    auto from = moved_from_.find(cookie);
    if (from == moved_from_.end()) return;
    const std::string old_path = from->second;
    moved_from_.erase(from);
    if (!Matches(old_path) || Matches(to)) return;  // not ours, or found by the next scan
    struct stat st {};
    if (::stat(to.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    const FileId id{st.st_dev, st.st_ino};
    for (auto& f : files_) {
      if (f->id != id) continue;
      // Already open: we read it through its descriptor. It no longer names old_path,
      // which a scan may not have seen yet; say so now, or a file renamed away from the
      // same name after it would be taken for its successor below and read before it.
      if (f->rotated_ns == 0 && f->path == old_path) {
        f->rotated_ns = ctx_.clock->NowNanos();
        counters_.rotations.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    counters_.rotations.fetch_add(1, std::memory_order_relaxed);
    Open(to, id, static_cast<uint64_t>(st.st_size), /*first=*/false, old_path, /*rotated=*/true);
    // It was renamed away before the file now at its old name was created: read it first,
    // so the rotated set is stored in the order it was written.
    auto current = std::find_if(files_.begin(), files_.end(), [&](const auto& f) {
      return f->path == old_path && f->rotated_ns == 0;
    });
    if (current != files_.end() && files_.back()->id == id) {
      std::rotate(current, files_.end() - 1, files_.end());
    }
  }

  // --- reading ---
  void Scan() {
    DiscoverFiles(/*first=*/false);
    // A file found at a name was created after every rename away from that name, and
    // those renames are queued by now: learn them before reading, so that a file that
    // lived at the name only between two looks is read before its successor.
    DrainNotifications();
    if (!paused_) {
      for (auto& f : files_) {
        if (!ReadFile(*f)) break;  // the spool is full: wait for room
      }
    }
    CloseFinished();
  }

  void Poll() {
    if (stopping_) return;
    Scan();
    SaveState();
    timer_.expires_after(std::chrono::milliseconds(options_.poll_interval_ms));
    timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (!ec && *alive) Poll();
    });
  }

  // Reads new lines of f into the spool. False if the spool refused one (paused).
  bool ReadFile(File& f) {
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return true;
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size < f.offset) {  // copytruncate: the file was emptied under us
      counters_.rotations.fetch_add(1, std::memory_order_relaxed);
      RecordLoss(f, f.size > f.offset ? f.size - f.offset : 0,
                 "truncated (copytruncate) before every line was read");
      f.offset = 0;
      f.skipping = false;
    }
    f.size = size;
    const uint64_t offset_before = f.offset;
    const bool skipping_before = f.skipping;
    uint64_t read_this_poll = 0;
    uint64_t last_seq = 0;
    bool appended = false;
    bool ok = true;
    while (f.offset < size && read_this_poll < kMaxBytesPerPoll && ok) {
      const ssize_t n = ::pread(f.fd, buf_.data(), buf_.size(), static_cast<off_t>(f.offset));
      if (n <= 0) break;
      const std::string_view data(buf_.data(), static_cast<size_t>(n));
      // A last line without its newline is stored only when no one can complete it any
      // more: the file was rotated away and the grace period has passed.
      const bool final_end = f.offset + data.size() >= size && f.rotated_ns != 0 &&
                             ctx_.clock->NowNanos() - f.rotated_ns > kRotateGraceNs;
      const size_t used = StoreLines(f, data, final_end, &last_seq, &appended, &ok);
      if (used == 0) break;  // a partial line: wait for its end
      f.offset += used;
      read_this_poll += used;
    }
    if (appended) WhenDurable(f.id, last_seq, f.offset, size);
    // Lines already set it; this covers bytes consumed without a record (a cut line's rest).
    if (f.offset != offset_before || f.skipping != skipping_before) WritePosition(f);
    if (!ok) Pause();
    return ok;
  }

  // --- positions in the spool ---
  struct SpoolPos {
    uint64_t offset = 0;
    bool skipping = false;
  };
  // "file <dev>:<ino> <input name>"; the name is replaced by its hash if it is too long.
  std::string PositionKey(const FileId& id) const {
    const std::string head =
        "file " + std::to_string(id.first) + ":" + std::to_string(id.second) + " ";
    if (head.size() + name_.size() <= spool::kMaxPositionKeyBytes) return head + name_;
    return head + "sha256:" + Hex(Sha256::Digest(name_));
  }
  // At start: the position frames cover every record before the last of them; the records
  // after it (at most one commit's) say where each of their lines ends.
  void ReadPositionsOfUncoveredRecords() {
    spool::Spool* spool = ctx_.ingest->spool();
    const std::optional<uint64_t> from = spool->recovered_position_seq();
    if (!from) return;
    auto reader = spool->NewReader(std::max(*from, spool->oldest_seq()));
    if (!reader.ok()) return;
    spool::Record r;
    for (;;) {
      StatusOr<bool> more = (*reader)->Next(&r);
      if (!more.ok() || !*more) break;
      event::Event e;
      if (r.type != spool::FrameType::kData || !event::DecodeEvent(r.payload, &e).ok()) continue;
      for (const event::Field& field : e.fields) {
        if (field.key != kPositionField) continue;
        char tag[17] = {};
        unsigned long long dev = 0, ino = 0, end = 0;
        char skip[8] = {};
        const std::string v(field.value);
        const int n =
            std::sscanf(v.c_str(), "%16s %llu:%llu %llu %7s", tag, &dev, &ino, &end, skip);
        if (n < 4 || input_tag_ != tag) continue;
        from_records_[{dev, ino}] = SpoolPos{end, n == 5 && std::string_view(skip) == "skip"};
      }
    }
  }
  std::optional<SpoolPos> SpoolPosition(const FileId& id) const {
    if (auto it = from_records_.find(id); it != from_records_.end()) return it->second;
    auto v = ctx_.ingest->spool()->Position(PositionKey(id));
    if (!v) return std::nullopt;
    SpoolPos p;
    unsigned long long offset = 0;
    char skip[8] = {};
    const int n = std::sscanf(v->c_str(), "%llu %7s", &offset, skip);
    if (n < 1) return std::nullopt;
    p.offset = offset;
    p.skipping = n == 2 && std::string_view(skip) == "skip";
    return p;
  }
  static std::string PositionValue(uint64_t offset, bool skipping) {
    return std::to_string(offset) + (skipping ? " skip" : "");
  }
  // The file's offset (and whether a cut line's rest is being skipped) after a read. A
  // failure costs duplicates after a crash, never a gap: logged.
  void WritePosition(const File& f) {
    const Status s = ctx_.ingest->SetPosition(f.position_key, PositionValue(f.offset, f.skipping));
    if (!s.ok() && !position_error_logged_) {
      LogWarning(name_ + ": cannot write the file position into the spool (" + s.ToString() +
                 "); after a crash lines may be read twice");
      position_error_logged_ = true;
    }
  }

  // Stores the complete lines (or multi-line records) at the front of data; returns the
  // bytes consumed.
  size_t StoreLines(File& f, std::string_view data, bool at_final_end, uint64_t* last_seq,
                    bool* appended, bool* ok) {
    size_t used = 0;
    while (used < data.size()) {
      const std::string_view rest = data.substr(used);
      size_t nl = rest.find('\n');
      if (multiline_ && !f.skipping && nl != std::string_view::npos &&
          nl <= options_.max_line_bytes) {
        const size_t n = RecordLength(f, rest, f.offset + used, at_final_end);
        if (n == 0) break;  // the record's end is not known yet
        std::string_view record = rest.substr(0, n);
        if (record.back() == '\n') record.remove_suffix(1);
        uint16_t flags = 0;
        if (record.size() > options_.max_line_bytes) {
          record = record.substr(0, options_.max_line_bytes);
          flags = event::kTruncated;
        }
        if (!Append(f, record, flags, last_seq, f.offset + used + n, /*skipping=*/false)) {
          *ok = false;
          return used;
        }
        f.pending_offset = UINT64_MAX;
        *appended = true;
        used += n;
        continue;
      }
      const bool complete = nl != std::string_view::npos;
      if (!complete && rest.size() < options_.max_line_bytes && !at_final_end) break;
      std::string_view line = rest.substr(0, complete ? nl : rest.size());
      size_t consumed = complete ? nl + 1 : line.size();
      uint16_t flags = 0;
      if (line.size() > options_.max_line_bytes) {
        line = line.substr(0, options_.max_line_bytes);
        flags = event::kTruncated;
        if (!complete) consumed = line.size();
      }
      if (f.skipping) {  // the tail of a line already stored cut
        f.skipping = !complete;
        used += consumed;
        continue;
      }
      const bool skip_rest = !complete && flags != 0;  // skip the rest of the long line
      if (!Append(f, line, flags, last_seq, f.offset + used + consumed, skip_rest)) {
        *ok = false;  // not stored: this line is read again when there is room
        return used;
      }
      if (skip_rest) f.skipping = true;
      *appended = true;
      used += consumed;
    }
    return used;
  }

  // The length of the multi-line record at the front of `rest` (which starts with a
  // complete line), through the newline of its last line; 0 while its end is unknown.
  size_t RecordLength(File& f, std::string_view rest, uint64_t offset, bool at_final_end) {
    size_t pos = 0;
    size_t lines = 0;
    for (;;) {
      pos = rest.find('\n', pos) + 1;  // the current line is complete
      ++lines;
      if (lines >= options_.multiline_max_lines || pos >= options_.max_line_bytes) return pos;
      const size_t next_nl = rest.find('\n', pos);
      if (next_nl != std::string_view::npos) {
        if (IsStart(rest.substr(pos, next_nl - pos))) return pos;
        continue;  // a continuation line
      }
      // The next line is not complete (or not written yet): wait, unless nobody can
      // add to this record any more or it has waited long enough.
      const int64_t now = ctx_.clock->NowNanos();
      if (f.pending_offset != offset) {
        f.pending_offset = offset;
        f.pending_since_ns = now;
      }
      const bool timed_out = now - f.pending_since_ns >= options_.multiline_timeout_ms * 1'000'000;
      return at_final_end || timed_out ? pos : 0;
    }
  }

  bool IsStart(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = static_cast<regoff_t>(line.size());
    return ::regexec(&start_re_, line.data(), 1, m, REG_STARTEND) == 0;
  }

  // Appends `line` with the file's position after it: `end` and whether the rest of a cut
  // line is to be skipped from there.
  bool Append(const File& f, std::string_view line, uint16_t flags, uint64_t* seq, uint64_t end,
              bool skipping) {
    event_.format = event::Format::kLine;
    event_.flags = flags;
    event_.source = f.source;
    event_.observed_unix_ns = ctx_.clock->NowNanos();
    event_.raw = line;
    event_.message = !line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line;
    const std::string value = PositionValue(end, skipping);
    const spool::PositionUpdate position{f.position_key, value};
    position_field_ = input_tag_ + " " + std::to_string(f.id.first) + ":" +
                      std::to_string(f.id.second) + " " + value;
    event_.fields.clear();
    event_.fields.push_back({kPositionField, position_field_});
    StatusOr<spool::AppendResult> r = ctx_.ingest->Append(event_, &position);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kResourceExhausted && !failed_) {
        LogError(name_ + ": cannot store lines: " + r.status().ToString() +
                 "; reading stops (nothing is skipped)");
        failed_ = true;
      }
      return false;
    }
    *seq = r->seq;
    counters_.messages.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes.fetch_add(line.size(), std::memory_order_relaxed);
    if (flags & event::kTruncated) counters_.truncated.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Once the lines up to `offset` are durable, the offset may be saved.
  void WhenDurable(FileId id, uint64_t last_seq, uint64_t offset, uint64_t size) {
    asio::io_context* io = ctx_.io;
    ctx_.ingest->OnDurable(last_seq + 1,
                           [this, io, id, offset, size, alive = alive_](const Status& s) {
                             if (!s.ok())
                               return;  // not durable: the saved offset stays where it was
                             asio::post(*io, [this, id, offset, size, alive] {
                               if (!*alive) return;
                               auto it = saved_.find(id);
                               if (it == saved_.end() || it->second.durable >= offset) return;
                               it->second.durable = offset;
                               it->second.size = size;
                               state_dirty_ = true;
                             });
                           });
  }

  void Pause() {
    if (paused_ || failed_) return;
    paused_ = true;
    counters_.paused.fetch_add(1, std::memory_order_relaxed);
    asio::io_context* io = ctx_.io;
    ctx_.ingest->OnRoom(options_.max_line_bytes + 512, [this, io, alive = alive_] {
      asio::post(*io, [this, alive] {
        if (*alive) paused_ = false;  // the next poll reads again
      });
    });
  }

  // Rotated files read to the end and quiet for the grace period are closed; their state
  // entry goes once it is durable to the end.
  void CloseFinished() {
    const int64_t now = ctx_.clock->NowNanos();
    for (auto it = files_.begin(); it != files_.end();) {
      File& f = **it;
      if (f.rotated_ns != 0 && f.offset >= f.size && now - f.rotated_ns > kRotateGraceNs) {
        auto s = saved_.find(f.id);
        if (s != saved_.end() && s->second.durable >= f.offset) {
          saved_.erase(s);
          state_dirty_ = true;
          ctx_.ingest->spool()->ForgetPosition(PositionKey(f.id));
        }
        it = files_.erase(it);
        continue;
      }
      ++it;
    }
    counters_.files.store(files_.size(), std::memory_order_relaxed);
  }

  Context ctx_;
  FileOptions options_;
  std::string name_;
  std::string state_path_;
  Counters counters_;
  asio::steady_timer timer_;
  std::shared_ptr<bool> alive_;  // false once destroyed; checked by posted callbacks
  std::vector<std::unique_ptr<File>> files_;
  std::map<FileId, Saved> saved_;
  std::unique_ptr<asio::posix::stream_descriptor> notify_;  // inotify, if available
  std::map<int, std::string> watch_dirs_;                   // watch descriptor → directory
  std::map<uint32_t, std::string> moved_from_;              // rename cookie → old path
  std::vector<char> notify_buf_;
  std::vector<char> buf_;
  bool multiline_ = false;
  regex_t start_re_{};
  event::Event event_;
  bool state_dirty_ = false;
  bool position_error_logged_ = false;
  std::string input_tag_;       // 8 hex digits of SHA-256(name_): whose positions a record has
  std::string position_field_;  // the current line's gapless.file_position
  std::map<FileId, SpoolPos> from_records_;  // at Start only
  bool paused_ = false;
  bool failed_ = false;
  bool stopping_ = false;
};

}  // namespace

Status CheckMultilinePattern(const std::string& pattern) {
  regex_t re;
  RETURN_IF_ERROR(CompileMultiline(pattern, &re));
  ::regfree(&re);
  return Status::Ok();
}

std::unique_ptr<Input> NewFileInput(const Context& ctx, const FileOptions& options) {
  return std::make_unique<FileInput>(ctx, options);
}

}  // namespace gapless::input
