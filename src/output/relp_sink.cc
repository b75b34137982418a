// The RELP output: a RELP client (docs/formats/relp.md) to rsyslog's imrelp, syslog-ng's
// relp source, or anything else librelp serves. A record is delivered when its own
// "rsp 200" arrives; any other answer, a serverclose, a closed connection or a timeout
// leaves it to be sent again. At most kWindow messages are unanswered at a time (librelp's
// default window). The name is resolved again at every connect, so a changed address
// is followed. Plain TCP only for now (docs/outputs.md says so).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "base/log.h"
#include "output/sink.h"
#include "relp/relp_frame.h"

namespace gapless::output {
namespace {

constexpr size_t kWindow = 128;
constexpr size_t kMaxAnswerBytes = 4096;

using Clock = std::chrono::steady_clock;

class RelpSink final : public Sink {
 public:
  explicit RelpSink(const OutputOptions& o) : o_(o) {}
  ~RelpSink() override { Close(); }

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    results->assign(items.size(), ItemResult{ItemResult::State::kRetry, "not answered"});
    const auto deadline = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    if (fd_ < 0) {
      if (Status s = Connect(deadline); !s.ok()) {
        Close();
        return s;
      }
    }
    for (size_t begin = 0; begin < items.size(); begin += kWindow) {
      const size_t end = std::min(items.size(), begin + kWindow);
      std::map<uint32_t, size_t> waiting;  // txnr -> index
      std::string out;
      for (size_t i = begin; i < end; ++i) {
        txnr_ = relp::NextTxnr(txnr_);
        waiting[txnr_] = i;
        relp::AppendFrame(txnr_, "syslog", items[i]->body, &out);
      }
      Status s = Write(out, deadline);
      if (s.ok()) s = Answers(&waiting, results, deadline);
      if (!s.ok()) {
        Close();  // unanswered ones stay kRetry; answered ones count
        for (const ItemResult& r : *results) {
          if (r.state == ItemResult::State::kDelivered) return Status::Ok();
        }
        return s;
      }
    }
    return Status::Ok();
  }

 private:
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Status Connect(Clock::time_point deadline) {
    const size_t colon = o_.address.rfind(':');
    std::string host = o_.address.substr(0, colon);
    const std::string port = o_.address.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return UnavailableError("relp output " + o_.name + ": cannot resolve " + o_.address + ": " +
                              ::gai_strerror(rc));
    }
    Status last =
        UnavailableError("relp output " + o_.name + ": " + o_.address + " has no address");
    for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) continue;
      int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        if (Wait(fd, POLLOUT, deadline)) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          rc = err == 0 ? 0 : -1;
          errno = err;
        } else {
          errno = ETIMEDOUT;
        }
      }
      if (rc != 0) {
        last = UnavailableError("relp output " + o_.name + ": cannot connect to " + o_.address +
                                ": " + std::strerror(errno));
        ::close(fd);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd_ = fd;
    }
    ::freeaddrinfo(found);
    if (fd_ < 0) return last;
    parser_ = std::make_unique<relp::Parser>(kMaxAnswerBytes);
    txnr_ = 1;
    RETURN_IF_ERROR(Write(
        relp::FormatFrame(txnr_, "open", "relp_version=0\nrelp_software=gapless\ncommands=syslog"),
        deadline));
    std::map<uint32_t, size_t> open{{txnr_, 0}};
    std::vector<ItemResult> result(1);
    RETURN_IF_ERROR(Answers(&open, &result, deadline));
    if (result[0].state != ItemResult::State::kDelivered) {
      return UnavailableError("relp output " + o_.name + ": " + o_.address +
                              " refused the session: " + result[0].reason);
    }
    return Status::Ok();
  }

  static bool Wait(int fd, short events, Clock::time_point deadline) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) return false;
    }
  }

  Status Write(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Wait(fd_, POLLOUT, deadline)) {
        continue;
      }
      return UnavailableError("relp output " + o_.name + ": sending to " + o_.address + ": " +
                              (n < 0 && errno != EAGAIN ? std::strerror(errno) : "timed out"));
    }
    return Status::Ok();
  }

  // Reads answers until every txnr in *waiting has one; rsp 200 delivers its item.
  Status Answers(std::map<uint32_t, size_t>* waiting, std::vector<ItemResult>* results,
                 Clock::time_point deadline) {
    char buf[8192];
    bool closing = false;
    std::string protocol_error;
    while (!waiting->empty()) {
      if (closing) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address +
                                " sent serverclose with messages unanswered");
      }
      if (!Wait(fd_, POLLIN, deadline)) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address + " did not answer " +
                                std::to_string(waiting->size()) + " messages within " +
                                std::to_string(o_.timeout_ms) + " ms");
      }
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      // Acknowledge at once: librelp writes each rsp on its own, and with our ACK
      // delayed (40 ms) its Nagle holds the rest of the window's answers until then.
      const int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address +
                                " closed the connection with " + std::to_string(waiting->size()) +
                                " messages unanswered");
      }
      Status s =
          parser_->Feed(std::string_view(buf, static_cast<size_t>(n)), [&](const relp::Frame& f) {
            if (f.command == "serverclose") {
              closing = true;
              return;
            }
            auto it = waiting->find(f.txnr);
            if (f.command != "rsp" || it == waiting->end()) {
              protocol_error = "unexpected \"" + std::string(f.command) + "\" for txnr " +
                               std::to_string(f.txnr);
              return;
            }
            ItemResult& r = (*results)[it->second];
            if (f.data.substr(0, 3) == "200") {
              r = ItemResult{ItemResult::State::kDelivered, ""};
            } else {
              r = ItemResult{ItemResult::State::kRetry, std::string(f.data.substr(0, 200))};
            }
            waiting->erase(it);
          });
      if (!s.ok() || !protocol_error.empty()) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address + ": " +
                                (s.ok() ? protocol_error : s.message()));
      }
    }
    return Status::Ok();
  }

  const OutputOptions o_;
  int fd_ = -1;
  uint32_t txnr_ = 0;
  std::unique_ptr<relp::Parser> parser_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewRelpSink(const OutputOptions& o) {
  return std::unique_ptr<Sink>(new RelpSink(o));
}

}  // namespace gapless::output
