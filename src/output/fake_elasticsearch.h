// A FAKE Elasticsearch for tests: no Elasticsearch server can be had on this machine. It
// serves POST /_bulk as the documentation describes it (NDJSON of action and document
// lines; an HTTP 200 whose `items` give each action's own status; `create` of an _id that
// exists answers 409 version_conflict_engine_exception) and can play the behaviours that
// break other shippers: per-item 429s and 400s inside a 200, HTTP 503 storms, a
// connection reset in the middle of the answer (after the documents were indexed), and
// refused credentials.
//
// Serves from FakeHttpServer's thread; thread-safe accessors.
#pragma once

#include <simdjson.h>

#include <functional>
#include <map>

#include "output/fake_http.h"

namespace gapless::output::testing {

class FakeElasticsearch final : public FakeHttpServer {
 public:
  // What to do with the n-th request (from 1).
  enum class Plan { kAnswer, kStatus503, kResetMidAnswer, kUnauthorized };
  // An item's status (201 to index it) for a document id at its attempt (from 1); with
  // a status >= 300, the error type and reason.
  struct ItemAnswer {
    int status = 201;
    std::string type, reason;
  };

  FakeElasticsearch() { Listen(); }
  ~FakeElasticsearch() { Shutdown(); }

  void set_plan(std::function<Plan(int request)> f) {
    std::lock_guard<std::mutex> l(mu_);
    plan_ = std::move(f);
  }
  void set_items(std::function<ItemAnswer(const std::string& id, int attempt)> f) {
    std::lock_guard<std::mutex> l(mu_);
    items_ = std::move(f);
  }
  // Indexed documents of an index: _id -> document.
  std::map<std::string, std::string> docs(const std::string& index) {
    std::lock_guard<std::mutex> l(mu_);
    return docs_[index];
  }
  int attempts(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    return attempts_[id];
  }
  int requests() const { return requests_; }
  std::string last_authorization() {
    std::lock_guard<std::mutex> l(mu_);
    return authorization_;
  }

 private:
  void Handle(int c, const std::string& head, const std::string& body) override {
    const int request = ++requests_;
    Plan plan = Plan::kAnswer;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (plan_) plan = plan_(request);
      const size_t auth = Lower(head).find("authorization:");
      authorization_ = auth == std::string::npos
                           ? ""
                           : head.substr(auth + 15, head.find("\r\n", auth) - auth - 15);
    }
    if (plan == Plan::kStatus503) {
      Answer(c, 503, "Service Unavailable",
             R"({"error":{"type":"unavailable_shards_exception"},"status":503})");
    } else if (plan == Plan::kUnauthorized) {
      Answer(c, 401, "Unauthorized", R"({"error":{"type":"security_exception"},"status":401})");
    } else if (head.rfind("POST /_bulk ", 0) != 0) {
      Answer(c, 404, "Not Found", "{}");
    } else {
      const std::string answer = Bulk(body);
      if (plan == Plan::kResetMidAnswer) {
        ResetMidAnswer(c, Response(200, "OK", answer));
      } else {
        Answer(c, 200, "OK", answer);
      }
    }
  }

  // Indexes what the items allow; the answer has one item per action, in order.
  std::string Bulk(const std::string& body) {
    std::lock_guard<std::mutex> l(mu_);
    simdjson::dom::parser parser;
    std::string items;
    bool errors = false;
    size_t pos = 0;
    while (pos < body.size()) {
      const size_t a_end = body.find('\n', pos);
      const size_t d_end = body.find('\n', a_end + 1);
      if (a_end == std::string::npos || d_end == std::string::npos) break;
      const std::string action = body.substr(pos, a_end - pos);
      const std::string doc = body.substr(a_end + 1, d_end - a_end - 1);
      pos = d_end + 1;
      simdjson::dom::element a;
      std::string_view index, id;
      if (parser.parse(action).get(a) != simdjson::SUCCESS ||
          a["create"]["_index"].get(index) != simdjson::SUCCESS ||
          a["create"]["_id"].get(id) != simdjson::SUCCESS) {
        return R"({"error":"bad action line"})";
      }
      const std::string idx(index), key(id);
      ItemAnswer answer;
      const int attempt = ++attempts_[key];
      if (items_) answer = items_(key, attempt);
      simdjson::dom::element d;
      if (answer.status == 201 && parser.parse(doc).get(d) != simdjson::SUCCESS) {
        answer = {400, "mapper_parsing_exception", "failed to parse"};
      }
      if (answer.status == 201 && docs_[idx].count(key) != 0) {
        answer = {409, "version_conflict_engine_exception",
                  "[" + key + "]: version conflict, document already exists"};
      }
      if (answer.status == 201) docs_[idx][key] = doc;
      std::string item = R"({"create":{"_index":")" + idx + R"(","_id":")" + key +
                         R"(","status":)" + std::to_string(answer.status);
      if (answer.status >= 300) {
        errors = true;
        item += R"(,"error":{"type":")" + answer.type + R"(","reason":")" + answer.reason + "\"}";
      }
      items += (items.empty() ? "" : ",") + item + "}}";
    }
    return std::string(R"({"took":3,"errors":)") + (errors ? "true" : "false") + R"(,"items":[)" +
           items + "]}";
  }

  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::function<Plan(int)> plan_;
  std::function<ItemAnswer(const std::string&, int)> items_;
  std::map<std::string, std::map<std::string, std::string>> docs_;
  std::map<std::string, int> attempts_;
  std::string authorization_;
};

}  // namespace gapless::output::testing
