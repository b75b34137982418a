// A FAKE Splunk HTTP Event Collector for tests: no Splunk can be had on this machine. It
// follows Splunk's documentation of HEC with indexer acknowledgement: POST
// /services/collector/event takes a run of JSON events on a channel
// (X-Splunk-Request-Channel, required when acks are on: 400 code 10 without it) and
// answers {"text":"Success","code":0,"ackId":N}; the events are indexed only later, and
// POST /services/collector/ack with {"acks":[N,...]} answers {"acks":{"N":true|false}} —
// true once, after which the ackId is forgotten. Tokens are "Authorization: Splunk <t>"
// (403 code 4 for a wrong one). A malformed event, or one the test marks bad, answers 400
// code 6 with "invalid-event-number". HEC cannot deduplicate: a resent event is indexed
// again. And the behaviours that break other shippers: acks that arrive late or never
// (the events lost in its pipeline), 503 "Server is busy" storms (code 9), a connection
// reset after the events were taken, and a token without indexer acknowledgement (an
// answer with no ackId).
#pragma once

#include <simdjson.h>

#include <functional>
#include <map>
#include <set>
#include <vector>

#include "output/fake_http.h"

namespace gapless::output::testing {

class FakeSplunkHec final : public FakeHttpServer {
 public:
  // What to do with the n-th event request (from 1).
  enum class Plan { kAnswer, kBusy503, kResetAfterTaking };
  // How many ack polls an ackId needs before it is true; -1: never (lost in the pipeline).
  using AckPlan = std::function<int(int ack_id)>;

  explicit FakeSplunkHec(std::string token) : token_(std::move(token)) { Listen(); }
  ~FakeSplunkHec() override { Shutdown(); }

  void set_plan(std::function<Plan(int request)> f) {
    std::lock_guard<std::mutex> l(mu_);
    plan_ = std::move(f);
  }
  void set_acks(AckPlan f) {
    std::lock_guard<std::mutex> l(mu_);
    acks_ = std::move(f);
  }
  void set_bad(std::set<std::string> ids) {  // events refused with code 6
    std::lock_guard<std::mutex> l(mu_);
    bad_ = std::move(ids);
  }
  void set_use_ack(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    use_ack_ = on;
  }
  // Indexed events: gapless.id -> how many times.
  std::map<std::string, int> indexed() {
    std::lock_guard<std::mutex> l(mu_);
    return indexed_;
  }
  std::string last_event() {
    std::lock_guard<std::mutex> l(mu_);
    return last_event_;
  }
  int event_requests() {
    std::lock_guard<std::mutex> l(mu_);
    return event_requests_;
  }
  int ack_polls() {
    std::lock_guard<std::mutex> l(mu_);
    return ack_polls_;
  }

 private:
  struct Pending {
    std::vector<std::string> ids;
    int polls_needed = 0;
    int polls = 0;
  };

  void Handle(int c, const std::string& head, const std::string& body) override {
    std::lock_guard<std::mutex> l(mu_);
    if (Header(head, "authorization") != "Splunk " + token_) {
      return Answer(c, 403, "Forbidden", R"({"text":"Invalid token","code":4})");
    }
    const std::string channel = Header(head, "x-splunk-request-channel");
    if (use_ack_ && channel.empty()) {
      return Answer(c, 400, "Bad Request", R"({"text":"Data channel is missing","code":10})");
    }
    if (head.rfind("POST /services/collector/event ", 0) == 0) return Events(c, channel, body);
    if (head.rfind("POST /services/collector/ack", 0) == 0) return Acks(c, channel, body);
    Answer(c, 404, "Not Found", R"({"text":"The requested URL was not found","code":404})");
  }

  void Events(int c, const std::string& channel, const std::string& body) {
    const int request = ++event_requests_;
    const Plan plan = plan_ ? plan_(request) : Plan::kAnswer;
    if (plan == Plan::kBusy503) {
      return Answer(c, 503, "Service Unavailable", R"({"text":"Server is busy","code":9})");
    }
    std::vector<std::string> ids;
    simdjson::dom::parser parser;
    simdjson::dom::document_stream docs;
    if (parser.parse_many(body).get(docs) != simdjson::SUCCESS) {
      return Answer(c, 400, "Bad Request", R"({"text":"Invalid data format","code":6})");
    }
    int n = 0;
    for (auto doc : docs) {
      simdjson::dom::element e;
      std::string_view id;
      if (doc.get(e) != simdjson::SUCCESS || e["event"].error() != simdjson::SUCCESS ||
          e["fields"]["gapless.id"].get(id) != simdjson::SUCCESS || bad_.count(std::string(id))) {
        // HEC stops at the first bad event and reports its index.
        return Answer(c, 400, "Bad Request",
                      R"({"text":"Invalid data format","code":6,"invalid-event-number":)" +
                          std::to_string(n) + "}");
      }
      ids.emplace_back(id);
      last_event_ = std::string(simdjson::to_string(e));
      ++n;
    }
    if (ids.empty()) return Answer(c, 400, "Bad Request", R"({"text":"No data","code":5})");
    if (!use_ack_) {
      for (const std::string& id : ids) ++indexed_[id];
      return Answer(c, 200, "OK", R"({"text":"Success","code":0})");
    }
    const int ack_id = next_ack_[channel]++;
    if (plan == Plan::kResetAfterTaking) {  // taken and indexed; the answer is lost
      for (const std::string& id : ids) ++indexed_[id];
      return ResetMidAnswer(
          c, Response(200, "OK",
                      R"({"text":"Success","code":0,"ackId":)" + std::to_string(ack_id) + "}"));
    }
    Pending& p = pending_[channel][ack_id];
    p.ids = std::move(ids);
    p.polls_needed = acks_ ? acks_(ack_id) : 0;
    Answer(c, 200, "OK", R"({"text":"Success","code":0,"ackId":)" + std::to_string(ack_id) + "}");
  }

  void Acks(int c, const std::string& channel, const std::string& body) {
    ++ack_polls_;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array list;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS || doc["acks"].get(list)) {
      return Answer(c, 400, "Bad Request", R"({"text":"Invalid data format","code":6})");
    }
    std::string out;
    for (simdjson::dom::element v : list) {
      int64_t id = 0;
      if (v.get(id) != simdjson::SUCCESS) continue;
      bool yes = false;
      auto& pending = pending_[channel];
      auto it = pending.find(static_cast<int>(id));
      if (it != pending.end() && it->second.polls_needed >= 0 &&
          ++it->second.polls >= it->second.polls_needed) {
        for (const std::string& e : it->second.ids) ++indexed_[e];
        pending.erase(it);  // true once, then forgotten
        yes = true;
      }
      out += (out.empty() ? "\"" : ",\"") + std::to_string(id) + "\":" + (yes ? "true" : "false");
    }
    Answer(c, 200, "OK", "{\"acks\":{" + out + "}}");
  }

  const std::string token_;
  std::mutex mu_;
  std::function<Plan(int)> plan_;
  AckPlan acks_;
  std::set<std::string> bad_;
  bool use_ack_ = true;
  std::map<std::string, int> next_ack_;
  std::map<std::string, std::map<int, Pending>> pending_;
  std::map<std::string, int> indexed_;
  std::string last_event_;
  int event_requests_ = 0;
  int ack_polls_ = 0;
};

}  // namespace gapless::output::testing
