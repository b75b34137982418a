// A FAKE Elasticsearch for tests: no Elasticsearch server can be had on this machine. It
// serves POST /_bulk as the documentation describes it (NDJSON of action and document
// lines; an HTTP 200 whose `items` give each action's own status; `create` of an _id that
// exists answers 409 version_conflict_engine_exception) and can play the behaviours that
// break other shippers: per-item 429s and 400s inside a 200, HTTP 503 storms, a
// connection reset in the middle of the answer (after the documents were indexed), and
// refused credentials.
//
// Plain blocking sockets on its own thread; one request per connection (what the client
// sends). Thread-safe accessors.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <simdjson.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace gapless::output::testing {

class FakeElasticsearch {
 public:
  // What to do with the n-th request (from 1).
  enum class Plan { kAnswer, kStatus503, kResetMidAnswer, kUnauthorized };
  // An item's status (201 to index it) for a document id at its attempt (from 1); with
  // a status >= 300, the error type and reason.
  struct ItemAnswer {
    int status = 201;
    std::string type, reason;
  };

  FakeElasticsearch() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeElasticsearch() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
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
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
    }
  }

  static bool SendAll(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  void Serve(int c) {
    std::string in;
    char buf[65536];
    size_t header_end = std::string::npos, length = 0;
    for (;;) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos &&
          (header_end = in.find("\r\n\r\n")) != std::string::npos) {
        const size_t cl = Lower(in.substr(0, header_end)).find("content-length:");
        if (cl != std::string::npos) length = std::stoul(in.substr(cl + 15));
      }
      if (header_end != std::string::npos && in.size() >= header_end + 4 + length) break;
    }
    if (header_end == std::string::npos) {
      ::close(c);
      return;
    }
    const std::string head = in.substr(0, header_end);
    const std::string body = in.substr(header_end + 4, length);
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
        const std::string full = Response(200, "OK", answer);
        SendAll(c, full.substr(0, full.size() / 2));
        linger l{1, 0};  // close with RST
        ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      } else {
        Answer(c, 200, "OK", answer);
      }
    }
    ::close(c);
  }

  static std::string Lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  static std::string Response(int status, const char* text, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + text +
           "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  static void Answer(int c, int status, const char* text, const std::string& body) {
    SendAll(c, Response(status, text, body));
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

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
  std::mutex mu_;
  std::function<Plan(int)> plan_;
  std::function<ItemAnswer(const std::string&, int)> items_;
  std::map<std::string, std::map<std::string, std::string>> docs_;
  std::map<std::string, int> attempts_;
  std::string authorization_;
};

}  // namespace gapless::output::testing
