// The RELP output: a RELP client (docs/formats/relp.md) to rsyslog's imrelp, syslog-ng's
// relp source, or anything else librelp serves. A record is delivered when its own
// "rsp 200" arrives; any other answer, a serverclose, a closed connection or a timeout
// leaves it to be sent again. At most kWindow messages are unanswered at a time (librelp's
// default window). Plain TCP or TLS (tcp_conn.h); the name is resolved again at every
// connect, so a changed address is followed.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <map>

#include "identity/identity.h"
#include "output/sink.h"
#include "output/tcp_conn.h"
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
    if (!conn_.connected()) {
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
  void Close() { conn_.Close(); }

  Status Connect(Clock::time_point deadline) {
    RETURN_IF_ERROR(conn_.Connect(TcpOptionsOf(o_), deadline));
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

  Status Write(std::string_view data, Clock::time_point deadline) {
    return conn_.Write(data, deadline);
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
      auto got = conn_.Read(buf, sizeof buf, deadline);
      if (!got.ok()) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address + " did not answer " +
                                std::to_string(waiting->size()) + " messages within " +
                                std::to_string(o_.timeout_ms) + " ms");
      }
      const size_t n = *got;
      // Acknowledge at once: librelp writes each rsp on its own, and with our ACK
      // delayed (40 ms) its Nagle holds the rest of the window's answers until then.
      const int one = 1;
      ::setsockopt(conn_.fd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      if (n == 0) {
        return UnavailableError("relp output " + o_.name + ": " + o_.address +
                                " closed the connection with " + std::to_string(waiting->size()) +
                                " messages unanswered");
      }
      Status s = parser_->Feed(std::string_view(buf, n), [&](const relp::Frame& f) {
        if (f.command == "serverclose") {
          closing = true;
          return;
        }
        auto it = waiting->find(f.txnr);
        if (f.command != "rsp" || it == waiting->end()) {
          protocol_error =
              "unexpected \"" + std::string(f.command) + "\" for txnr " + std::to_string(f.txnr);
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
  TcpConn conn_;
  uint32_t txnr_ = 0;
  std::unique_ptr<relp::Parser> parser_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewRelpSink(const OutputOptions& o) {
  if (!o.key_file.empty()) RETURN_IF_ERROR(identity::CheckOwnerOnly(o.key_file));
  return std::unique_ptr<Sink>(new RelpSink(o));
}

}  // namespace gapless::output
