// The splunk_hec output: Splunk's HTTP Event Collector with indexer acknowledgement. A
// batch is one POST of events to <url>/services/collector/event on this output's channel
// (X-Splunk-Request-Channel, a random UUID per run); the 200 answer carries an ackId, and
// that only says the events looked valid. The records are delivered when
// <url>/services/collector/ack answers true for the ackId — the events were indexed —
// polled every ack_poll_ms (doubling to 1 s). An ackId not acknowledged within
// ack_timeout_ms (HEC forgets pending acks when it restarts, and an event lost in its
// pipeline is never acknowledged) leaves every record of the batch to be sent again:
// HEC cannot deduplicate, so a resend after a lost ack may index an event twice, which its
// `gapless.id` field identifies.
//
// Answers, from Splunk's documented status codes:
//   200 code 0 with ackId         wait for the ack
//   200 without ackId             the token has no indexer acknowledgement (useACK):
//                                 refused as a misconfiguration, nothing delivered
//   400 code 6 (invalid-event-number N)  event N refused for good, the others sent again
//   401/403 (codes 1-4)           the token is refused: nothing delivered, said so
//   400 code 7                    the index is not allowed for the token: said so
//   503 (code 9, busy), 5xx, no answer, a cut-off answer: all sent again
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "base/json_text.h"
#include "http/client.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

using Clock = std::chrono::steady_clock;

std::string NewChannel() {
  std::random_device rd;
  unsigned char b[16];
  for (unsigned char& c : b) c = static_cast<unsigned char>(rd());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 1
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

class SplunkHecSink final : public Sink {
 public:
  SplunkHecSink(const OutputOptions& o, std::string token)
      : o_(o), token_(std::move(token)), channel_(NewChannel()) {
    base_ = o.url;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    results->assign(items.size(), ItemResult{ItemResult::State::kRetry, "not acknowledged"});
    http::Request req = NewRequest("/services/collector/event");
    const std::string meta = Meta();
    for (const Item* item : items) {
      req.body += "{\"event\":";
      if (IsJsonShape(o_.shape)) {
        req.body += item->body;
      } else {
        req.body += JsonString(item->body);
      }
      req.body += meta;
      req.body += ",\"fields\":{\"gapless.id\":" + JsonString(item->id) + "}}\n";
    }
    auto resp = http::Send(req, ClientOptions());
    if (!resp.ok()) return UnavailableError(Where() + resp.status().message());
    int64_t code = -1, ack_id = -1, invalid = -1;
    std::string text;
    ReadAnswer(resp->body, &code, &ack_id, &invalid, &text);
    if (resp->status == 401 || resp->status == 403) {
      return UnavailableError(Where() + "HTTP " + std::to_string(resp->status) + " \"" + text +
                              "\": the token (token_file) was refused");
    }
    if (resp->status == 400 && code == 6 && invalid >= 0 &&
        static_cast<size_t>(invalid) < items.size()) {
      // HEC stops at the first bad event; whatever it took before it has no ackId.
      (*results)[static_cast<size_t>(invalid)] =
          ItemResult{ItemResult::State::kRejected, "HEC code 6: " + text};
      return Status::Ok();
    }
    if (resp->status != 200) {
      std::string why = Where() + "HTTP " + std::to_string(resp->status);
      if (code >= 0) why += " code " + std::to_string(code);
      if (!text.empty()) why += " \"" + text + "\"";
      if (code == 7) why += ": the index is not allowed for this token";
      if (code == 14) why += ": enable indexer acknowledgement (useACK) on the token";
      return UnavailableError(why);
    }
    if (ack_id < 0) {
      return UnavailableError(Where() +
                              "the answer has no ackId: enable indexer acknowledgement (useACK) "
                              "on the HEC token, or nothing can be confirmed");
    }
    ASSIGN_OR_RETURN(bool acked, WaitForAck(ack_id));
    if (!acked) {
      return UnavailableError(Where() + "ackId " + std::to_string(ack_id) +
                              " not acknowledged within " + std::to_string(o_.ack_timeout_ms) +
                              " ms: the batch is sent again");
    }
    for (ItemResult& r : *results) r = ItemResult{ItemResult::State::kDelivered, ""};
    return Status::Ok();
  }

  void Interrupt() override { interrupted_ = true; }

 private:
  std::string Where() const { return "splunk_hec output " + o_.name + ": "; }

  http::Request NewRequest(const std::string& path) const {
    http::Request req;
    req.method = "POST";
    req.url = base_ + path;
    req.content_type = "application/json";
    req.headers.emplace_back("Authorization", "Splunk " + token_);
    req.headers.emplace_back("X-Splunk-Request-Channel", channel_);
    return req;
  }
  http::ClientOptions ClientOptions() const {
    http::ClientOptions co;
    co.timeout_ms = o_.timeout_ms;
    co.ca_file = o_.ca_file;
    co.max_body = 1 << 20;
    return co;
  }
  std::string Meta() const {
    std::string m = ",\"sourcetype\":" + JsonString(o_.sourcetype);
    if (!o_.index.empty()) m += ",\"index\":" + JsonString(o_.index);
    return m;
  }

  static void ReadAnswer(const std::string& body, int64_t* code, int64_t* ack_id, int64_t* invalid,
                         std::string* text) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS) return;
    // Each member is optional; one that is absent leaves its -1.
    if (doc["code"].get(*code) != simdjson::SUCCESS) *code = -1;
    if (doc["ackId"].get(*ack_id) != simdjson::SUCCESS) *ack_id = -1;
    if (doc["invalid-event-number"].get(*invalid) != simdjson::SUCCESS) *invalid = -1;
    std::string_view t;
    if (doc["text"].get(t) == simdjson::SUCCESS) *text = std::string(t.substr(0, 200));
  }

  // Polls the ack endpoint until ack_id is acknowledged (true) or ack_timeout_ms passed
  // (false). An error only when the ack endpoint itself refuses us.
  StatusOr<bool> WaitForAck(int64_t ack_id) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(o_.ack_timeout_ms);
    int64_t wait_ms = o_.ack_poll_ms;
    const std::string key = std::to_string(ack_id);
    for (;;) {
      const auto wake = Clock::now() + std::chrono::milliseconds(wait_ms);
      while (Clock::now() < wake) {
        if (interrupted_) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(wait_ms, 20)));
      }
      wait_ms = std::min<int64_t>(wait_ms * 2, std::max<int64_t>(o_.ack_poll_ms, 1000));
      http::Request req = NewRequest("/services/collector/ack?channel=" + channel_);
      req.body = "{\"acks\":[" + key + "]}";
      auto resp = http::Send(req, ClientOptions());
      if (resp.ok() && (resp->status == 401 || resp->status == 403)) {
        return UnavailableError(Where() + "the ack endpoint refused the token (HTTP " +
                                std::to_string(resp->status) + ")");
      }
      if (resp.ok() && resp->status == 200) {
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        bool yes = false;
        if (parser.parse(resp->body).get(doc) == simdjson::SUCCESS &&
            doc["acks"][key].get(yes) == simdjson::SUCCESS && yes) {
          return true;
        }
      }
      // Not yet, a busy answer, or no answer: ask again until the deadline.
      if (Clock::now() + std::chrono::milliseconds(wait_ms) > deadline) return false;
    }
  }

  const OutputOptions o_;
  const std::string token_;
  const std::string channel_;
  std::atomic<bool> interrupted_{false};
  std::string base_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewSplunkHecSink(const OutputOptions& o) {
  ASSIGN_OR_RETURN(std::string token, ReadSecretFile(o.name, "token_file", o.token_file));
  return std::unique_ptr<Sink>(new SplunkHecSink(o, std::move(token)));
}

}  // namespace gapless::output
