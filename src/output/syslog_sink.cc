// The syslog output: RFC 5424 messages over TCP or TLS with octet counting (RFC 6587
// 3.4.1 and RFC 5425: "<length> <message>"), to rsyslog's imtcp, syslog-ng's syslog()
// source, a SIEM's syslog listener. The protocol has no acknowledgement: nothing the
// receiver says can confirm a message. The most that can be known is that the receiver's
// TCP acknowledged every byte, so a batch counts as "sent" once the socket's send queue
// is empty (SIOCOUTQ == 0), not when write() returned — a receiver that is gone or stuck
// is noticed, and the batch is sent again. What the receiver did with bytes its kernel
// took is beyond us: its crash can lose them. Delivery is "sent, unconfirmed"
// (confirmed() is false; docs/outputs.md and `gapless outputs` say so).
#include <chrono>

#include "identity/identity.h"
#include "output/sink.h"
#include "output/tcp_conn.h"

namespace gapless::output {
namespace {

using Clock = std::chrono::steady_clock;

class SyslogSink final : public Sink {
 public:
  explicit SyslogSink(const OutputOptions& o) : o_(o) {}

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    results->assign(items.size(), ItemResult{ItemResult::State::kRetry, "not sent"});
    const auto deadline = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    if (!conn_.connected()) {
      RETURN_IF_ERROR(conn_.Connect(TcpOptionsOf(o_), deadline));
    }
    out_.clear();
    for (const Item* item : items) {
      std::string_view body = item->body;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
      out_ += std::to_string(body.size());
      out_ += ' ';
      out_ += body;
    }
    Status s = conn_.Write(out_, deadline);
    if (s.ok()) s = conn_.Drained(deadline);
    if (!s.ok()) {
      conn_.Close();  // the next batch starts on a new connection
      return s;
    }
    for (ItemResult& r : *results) r = ItemResult{ItemResult::State::kDelivered, ""};
    return Status::Ok();
  }

  bool confirmed() const override { return false; }

 private:
  const OutputOptions o_;
  TcpConn conn_;
  std::string out_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewSyslogSink(const OutputOptions& o) {
  if (!o.key_file.empty()) RETURN_IF_ERROR(identity::CheckOwnerOnly(o.key_file));
  return std::unique_ptr<Sink>(new SyslogSink(o));
}

}  // namespace gapless::output
