// Syslog over UDP: one datagram, one message.
//
// UDP cannot push back, so a full spool (block policy) pauses reading and the kernel's
// receive buffer fills; the datagrams the kernel then drops are counted by the socket
// (SO_RXQ_OVFL, reported with every datagram received, and read without one from
// /proc/self/net/udp's "drops" column each second and at Stop, so the last drops before a
// silence are declared within a second) and written down as udp_kernel_drop LOSS records
// — at once for the first drop of an episode, then at most once a second, and at Stop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio.hpp>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "env/env.h"
#include "input/input.h"
#include "input/syslog_sink.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;

constexpr int kBatch = 256;  // datagrams per wake-up before yielding to other handlers
constexpr int64_t kLossIntervalNs = 1'000'000'000;
constexpr int64_t kDropPollNs = 1'000'000'000;

}  // namespace

std::optional<uint32_t> ProcNetUdpDrops(std::string_view table, uint64_t inode) {
  // Columns: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
  // timeout inode ref pointer drops.
  const std::string wanted = std::to_string(inode);
  size_t at = table.find('\n');  // the header
  while (at != std::string_view::npos && at < table.size()) {
    const size_t start = at + 1;
    at = table.find('\n', start);
    std::string_view line = table.substr(start, at == std::string_view::npos ? at : at - start);
    std::vector<std::string_view> cols;
    for (size_t i = 0; i < line.size() && cols.size() < 14;) {
      while (i < line.size() && line[i] == ' ') ++i;
      const size_t j = std::min(line.find(' ', i), line.size());
      if (j > i) cols.push_back(line.substr(i, j - i));
      i = j;
    }
    if (cols.size() < 13 || cols[9] != wanted) continue;
    uint64_t drops = 0;
    for (char ch : cols[12]) {
      if (ch < '0' || ch > '9' || drops > (1ull << 40)) return std::nullopt;
      drops = drops * 10 + static_cast<uint64_t>(ch - '0');
    }
    return static_cast<uint32_t>(drops);  // the kernel's counter is 32 bits, as SO_RXQ_OVFL
  }
  return std::nullopt;
}

namespace {

class SyslogUdpInput final : public Input {
 public:
  SyslogUdpInput(const Context& ctx, const SyslogOptions& options)
      : ctx_(ctx),
        options_(options),
        socket_(*ctx.io),
        flush_timer_(*ctx.io),
        poll_timer_(*ctx.io),
        sink_(ctx.ingest, &source_, &counters_),
        buf_(options.max_message_bytes + 1) {}

  // Handlers still queued when this is destroyed (a reload does that) see alive_ false.
  ~SyslogUdpInput() override { *alive_ = false; }

  const std::string& name() const override { return source_; }
  uint16_t port() const override { return port_; }
  Stats stats() const override { return counters_.Snapshot(); }

  Status Start() override {
    std::string address;
    RETURN_IF_ERROR(ParseListenAddress(options_.listen, &address, &port_));
    boost::system::error_code ec;
    const udp::endpoint endpoint(asio::ip::make_address(address, ec), port_);
    if (!ec) socket_.open(endpoint.protocol(), ec);
    if (!ec && options_.receive_buffer_bytes > 0) {
      socket_.set_option(asio::socket_base::receive_buffer_size(options_.receive_buffer_bytes), ec);
    }
    if (!ec) socket_.bind(endpoint, ec);
    if (ec) {
      return UnavailableError("syslog UDP input cannot listen on " + options_.listen + ": " +
                              ec.message());
    }
    const int one = 1;
    if (::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) {
      return UnavailableError("syslog UDP input: SO_RXQ_OVFL (kernel drop counter) unavailable: " +
                              std::string(std::strerror(errno)));
    }
    socket_.non_blocking(true, ec);
    port_ = socket_.local_endpoint().port();
    source_ = options_.name.empty() ? "syslog:udp:" + std::to_string(port_) : options_.name;
    struct stat st {};
    if (::fstat(socket_.native_handle(), &st) == 0) inode_ = st.st_ino;
    table_ =
        socket_.local_endpoint().address().is_v6() ? "/proc/self/net/udp6" : "/proc/self/net/udp";
    if (!PollDrops()) {
      LogWarning(source_ + ": cannot read the socket's drop counter from " + table_ +
                 "; drops are declared only when the next datagram arrives");
    }
    ArmPollTimer();
    WaitReadable();
    return Status::Ok();
  }

  void Stop() override {
    stopping_ = true;
    PollDrops();  // the drops since the last datagram, before the socket is gone
    boost::system::error_code ignored;
    socket_.close(ignored);
    flush_timer_.cancel();
    poll_timer_.cancel();
    if (held_) {
      RecordUnstoredAtStop(ctx_.ingest, source_, 1, held_->bytes.size(), held_->observed_ns,
                           held_->observed_ns, &counters_);
      held_.reset();
    }
    FlushDrops(/*force=*/true);
  }

 private:
  void WaitReadable() {
    socket_.async_wait(udp::socket::wait_read,
                       [this, alive = alive_](const boost::system::error_code& ec) {
                         if (!*alive || stopping_ || ec) return;
                         Drain();
                       });
  }

  // Reads up to kBatch datagrams; goes on later unless a full spool paused us.
  void Drain() {
    if (held_ && !StoreHeld()) return;
    bool drained = false;
    for (int i = 0; i < kBatch && !drained; ++i) {
      uint16_t flags = 0;
      std::string_view bytes;
      if (!Receive(&bytes, &flags)) {
        drained = true;
        break;
      }
      const int64_t now = ctx_.clock->NowNanos();
      const Status s = sink_.Store(bytes, flags, now);
      if (!s.ok()) {
        held_ = HeldMessage{std::string(bytes), flags, now};
        Pause(s);
        return;
      }
    }
    FlushDrops(/*force=*/false);
    // The reactor is edge-triggered: only a socket read to EAGAIN may wait for readiness;
    // otherwise continue after letting other handlers run.
    if (drained) {
      WaitReadable();
    } else {
      asio::post(*ctx_.io, [this, alive = alive_] {
        if (*alive && !stopping_) Drain();
      });
    }
  }

  // One datagram into buf_; false when none is waiting (or on an error, logged).
  bool Receive(std::string_view* bytes, uint16_t* flags) {
    sockaddr_storage from{};
    iovec iov{buf_.data(), buf_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        LogWarning(source_ + ": recvmsg: " + std::strerror(errno));
      }
      return false;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t total = 0;
        std::memcpy(&total, CMSG_DATA(c), sizeof(total));
        NoteKernelDrops(total);
      }
    }
    size_t len = static_cast<size_t>(n);
    *flags = 0;
    if (len > options_.max_message_bytes) {  // our buffer is one byte larger: it was cut
      len = options_.max_message_bytes;
      *flags |= event::kTruncated;
    }
    *bytes = std::string_view(buf_.data(), len);
    // Most datagrams come from the same few senders: format the address only on a change.
    if (msg.msg_namelen != last_from_len_ ||
        std::memcmp(&from, &last_from_, msg.msg_namelen) != 0) {
      std::memcpy(&last_from_, &from, msg.msg_namelen);
      last_from_len_ = msg.msg_namelen;
      sink_.set_peer(PeerName(from));
    }
    return true;
  }

  static std::string PeerName(const sockaddr_storage& from) {
    char text[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (from.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&from);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
      port = ntohs(a->sin_port);
    } else if (from.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&from);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
      port = ntohs(a->sin6_port);
      return std::string("[") + text + "]:" + std::to_string(port);
    }
    return std::string(text) + ":" + std::to_string(port);
  }

  void NoteKernelDrops(uint32_t total) {
    // A datagram carries the count as it was when the datagram was queued, which may be
    // older than one polled since: only an increase counts (modulo 2^32).
    const auto delta = static_cast<int32_t>(total - last_drop_total_);
    if (delta <= 0) return;
    last_drop_total_ = total;
    const int64_t now = ctx_.clock->NowNanos();
    if (pending_drops_ == 0) drops_from_ns_ = now;
    drops_to_ns_ = now;
    pending_drops_ += static_cast<uint32_t>(delta);
    counters_.kernel_drops.fetch_add(static_cast<uint32_t>(delta), std::memory_order_relaxed);
  }

  void FlushDrops(bool force) {
    if (pending_drops_ == 0) return;
    const int64_t now = ctx_.clock->NowNanos();
    if (!force && last_loss_ns_ != 0 && now - last_loss_ns_ < kLossIntervalNs) {
      ArmFlushTimer();
      return;
    }
    spool::LossRecord loss;
    loss.reason = spool::LossReason::kUdpKernelDrop;
    loss.record_count = pending_drops_;
    loss.time_from_unix_ns = drops_from_ns_;
    loss.time_to_unix_ns = drops_to_ns_;
    loss.detail = source_ + ": the kernel dropped datagrams (receive buffer full)";
    if (ctx_.ingest->AppendLoss(loss).ok()) {
      pending_drops_ = 0;
      last_loss_ns_ = now;
    } else if (!force) {
      ArmFlushTimer();  // even the loss reserve is full: keep counting, try again
    } else {
      LogError(source_ + ": " + std::to_string(pending_drops_) +
               " kernel-dropped datagrams could not be recorded in the spool");
    }
  }

  // The kernel's drop counter read now, without a datagram; false if it cannot be read.
  bool PollDrops() {
    if (inode_ == 0) return false;
    auto text = env::ReadFileToString(env::Env::Posix(), table_);
    if (!text.ok()) return false;
    const std::optional<uint32_t> drops = ProcNetUdpDrops(*text, inode_);
    if (!drops) return false;
    NoteKernelDrops(*drops);
    return true;
  }

  void ArmPollTimer() {
    poll_timer_.expires_after(std::chrono::nanoseconds(kDropPollNs));
    poll_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (!*alive || ec || stopping_) return;
      if (PollDrops()) FlushDrops(false);
      ArmPollTimer();
    });
  }

  void ArmFlushTimer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    flush_timer_.expires_after(std::chrono::nanoseconds(kLossIntervalNs));
    flush_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
      if (!*alive) return;
      timer_armed_ = false;
      if (!ec && !stopping_) FlushDrops(false);
    });
  }

  bool StoreHeld() {
    const Status s = sink_.Store(held_->bytes, held_->flags, held_->observed_ns);
    if (!s.ok()) {
      Pause(s);
      return false;
    }
    held_.reset();
    return true;
  }

  void Pause(const Status& s) {
    counters_.paused.fetch_add(1, std::memory_order_relaxed);
    if (s.code() != StatusCode::kResourceExhausted) {
      LogError(source_ + ": cannot store: " + s.ToString() + "; reading stops");
      return;
    }
    asio::io_context* io = ctx_.io;
    ctx_.ingest->OnRoom(held_->bytes.size() + 512, [this, io, alive = alive_] {
      asio::post(*io, [this, alive] {
        if (*alive && !stopping_) Drain();
      });
    });
  }

  Context ctx_;
  SyslogOptions options_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::string source_;
  Counters counters_;
  uint16_t port_ = 0;
  udp::socket socket_;
  asio::steady_timer flush_timer_;
  asio::steady_timer poll_timer_;
  uint64_t inode_ = 0;  // of the socket, its line in table_
  std::string table_;
  SyslogSink sink_;
  std::vector<char> buf_;
  std::optional<HeldMessage> held_;
  sockaddr_storage last_from_{};  // sender of the last datagram, whose name sink_ holds
  socklen_t last_from_len_ = 0;
  bool stopping_ = false;
  bool timer_armed_ = false;
  uint32_t last_drop_total_ = 0;
  uint64_t pending_drops_ = 0;
  int64_t drops_from_ns_ = 0;
  int64_t drops_to_ns_ = 0;
  int64_t last_loss_ns_ = 0;
};

}  // namespace

std::unique_ptr<Input> NewSyslogUdpInput(const Context& ctx, const SyslogOptions& options) {
  return std::make_unique<SyslogUdpInput>(ctx, options);
}

}  // namespace gapless::input
