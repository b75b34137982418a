// The HTTP JSON input against a Beast client (curl is driven in tests/peers_test.cc).
#include <sys/stat.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>

#include "input/input_test_util.h"

namespace gapless::input {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

struct Answer {
  int status = 0;
  std::string body;
  std::string retry_after;
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : stream_(io_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Answer Post(const std::string& body, const std::string& content_type = "application/x-ndjson",
              const std::string& target = "/ingest", http::verb verb = http::verb::post,
              const std::string& token = "") {
    http::request<http::string_body> req(verb, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.body() = body;
    req.prepare_payload();
    boost::system::error_code ec;
    http::write(stream_, req, ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream_, buffer, res, ec);
    if (ec) return {-1, ec.message(), ""};
    return {static_cast<int>(res.result_int()), res.body(),
            std::string(res[http::field::retry_after])};
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
};

// Connects to 127.0.0.1:port and sends `head` (request line and headers), no body.
std::unique_ptr<beast::tcp_stream> SendHead(asio::io_context& io, uint16_t port,
                                            const std::string& head) {
  auto s = std::make_unique<beast::tcp_stream>(io);
  s->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(*s, asio::buffer(head));
  return s;
}

// The answer on s within `seconds`; an error if none came.
boost::system::error_code ReadAnswer(beast::tcp_stream& s, int seconds,
                                     http::response<http::string_body>* res) {
  s.expires_after(std::chrono::seconds(seconds));
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  http::read(s, buffer, *res, ec);
  return ec;
}

class HttpTest : public InputTest {
 protected:
  void StartHttp(HttpOptions o = HttpOptions()) {
    if (!spool_) OpenSpool();
    o.listen = "127.0.0.1:0";
    o.max_message_bytes = 1024;
    Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), ""};
    input_ = NewHttpInput(ctx, o);
    const Status s = input_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    work_.emplace(asio::make_work_guard(io_));
    thread_ = std::thread([this] { io_.run(); });
  }
  static std::string Lines(int from, int n) {
    std::string body;
    for (int i = from; i < from + n; ++i)
      body += "{\"message\":\"event " + std::to_string(i) + "\"}\n";
    return body;
  }
};

// 200 means durable: with a 20 ms commit delay an early answer would be seen.
TEST_F(HttpTest, NdjsonIsAnswered200OnlyOnceDurable) {
  commit_delay_us_ = 20'000;
  StartHttp();
  HttpClient c(input_->port());
  const Answer a = c.Post(Lines(0, 100));
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_GE(spool_->durable_size(), 100u) << "answered before durable";
  EXPECT_EQ(a.body, "{\"stored\":100,\"parse_errors\":0,\"truncated\":0}\n");
  // Keep-alive: the same connection takes a JSON array next.
  const Answer b = c.Post("[{\"message\":\"event 100\"}, {\"message\":\"event 101\"}]",
                          "application/json; charset=utf-8");
  ASSERT_EQ(b.status, 200) << b.body;
  const auto got = WaitForRecords(102);
  ASSERT_EQ(got.size(), 102u);
  for (int i = 0; i < 102; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)], "{\"message\":\"event " + std::to_string(i) + "\"}");
  }
  EXPECT_EQ(last_source_, "http:" + std::to_string(input_->port()));
}

TEST_F(HttpTest, BadLinesAreStoredRawAndReported) {
  StartHttp();
  HttpClient c(input_->port());
  const Answer a = c.Post("{\"message\":\"ok\"}\nnot json at all\n");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find("\"parse_errors\":1"), std::string::npos) << a.body;
  EXPECT_NE(a.body.find("\"first_error\":\"line 2: not valid JSON"), std::string::npos) << a.body;
  const auto got = WaitForRecords(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], "not json at all");
  EXPECT_EQ(input_->stats().parse_errors, 1u);
}

TEST_F(HttpTest, RefusalsSayWhatIsWrongAndStoreNothing) {
  HttpOptions o;
  o.max_body_bytes = 4096;
  StartHttp(o);
  const struct {
    const char* what;
    std::string body, content_type, target;
    http::verb verb;
    int status;
    const char* says;
  } cases[] = {
      {"wrong path", Lines(0, 1), "application/x-ndjson", "/other", http::verb::post, 404,
       "POST events to /ingest"},
      {"GET", "", "", "/ingest", http::verb::get, 405, "only POST"},
      {"no content type", Lines(0, 1), "", "/ingest", http::verb::post, 415,
       "application/x-ndjson"},
      {"text/plain", Lines(0, 1), "text/plain", "/ingest", http::verb::post, 415, "Content-Type"},
      {"broken array", "[{\"message\":\"a\"}, {", "application/json", "/ingest", http::verb::post,
       400, "not valid JSON"},
      {"too big", Lines(0, 200), "application/x-ndjson", "/ingest", http::verb::post, 413,
       "max_body_size (4096 bytes)"},
  };
  for (const auto& k : cases) {
    HttpClient c(input_->port());
    const Answer a = c.Post(k.body, k.content_type, k.target, k.verb);
    EXPECT_EQ(a.status, k.status) << k.what << ": " << a.body;
    EXPECT_NE(a.body.find(k.says), std::string::npos) << k.what << ": " << a.body;
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(spool_->next_seq(), 0u) << "a refused request stored something";
}

// A spool full at a request's first event: 503 + Retry-After, nothing stored. Full in the
// middle of a request: the answer waits for room, then says everything is stored.
TEST_F(HttpTest, FullSpoolAnswers503OrWaitsAndLosesNothing) {
  spool::Options so = spool::testing::SmallOptions();
  so.quota_bytes = 8 * so.segment_bytes;
  OpenSpool(so);
  HttpOptions o;
  StartHttp(o);
  const int n = 2000;
  Answer big;
  std::thread first([&] {
    HttpClient c(input_->port());
    big = c.Post(Lines(0, n));
  });
  for (int i = 0; i < 1000 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u) << "the spool never filled";
  {
    HttpClient c(input_->port());
    const Answer a = c.Post(Lines(9999, 1));
    EXPECT_EQ(a.status, 503) << a.body;
    EXPECT_EQ(a.retry_after, "1");
    EXPECT_NE(a.body.find("spool full"), std::string::npos) << a.body;
  }
  const std::vector<std::string> got = Drain(n, /*messages=*/true);
  first.join();
  EXPECT_EQ(big.status, 200) << big.body;
  EXPECT_NE(big.body.find("\"stored\":2000"), std::string::npos) << big.body;
  ASSERT_EQ(static_cast<int>(got.size()), n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], "event " + std::to_string(i));
}

TEST_F(HttpTest, BearerTokenIsRequiredWhenConfigured) {
  const std::string path = ::testing::TempDir() + "/gapless_token_" + std::to_string(::getpid());
  std::ofstream(path) << "0123456789abcdef0123\n";
  ::chmod(path.c_str(), 0644);
  HttpOptions o;
  o.token_file = path;
  o.listen = "127.0.0.1:0";
  OpenSpool();
  Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), ""};
  const Status s = NewHttpInput(ctx, o)->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("chmod 600"), std::string::npos) << s.ToString();
  ::chmod(path.c_str(), 0600);
  StartHttp(o);
  EXPECT_EQ(HttpClient(input_->port()).Post(Lines(0, 1)).status, 401);
  EXPECT_EQ(HttpClient(input_->port())
                .Post(Lines(0, 1), "application/x-ndjson", "/ingest", http::verb::post,
                      "wrong-token-000000")
                .status,
            401);
  EXPECT_EQ(HttpClient(input_->port())
                .Post(Lines(0, 1), "application/x-ndjson", "/ingest", http::verb::post,
                      "0123456789abcdef0123")
                .status,
            200);
  EXPECT_EQ(WaitForRecords(1).size(), 1u);
  // Issue 16 item 11: refused at the headers. A client that announces a large body and
  // sends none of it gets its 401 at once; the body is never waited for (or held).
  {
    asio::io_context io;
    auto raw =
        SendHead(io, input_->port(),
                 "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 "Authorization: Bearer wrong-token-000000\r\nContent-Length: 900000\r\n\r\n");
    http::response<http::string_body> res;
    const boost::system::error_code ec = ReadAnswer(*raw, 2, &res);
    ASSERT_FALSE(ec) << "no answer before the body: " << ec.message();
    EXPECT_EQ(res.result_int(), 401u);
  }
  std::remove(path.c_str());
}

// Issue 16 item 11: the bodies held at once are bounded over every connection (16 ×
// max_body_bytes): past it a request is refused 503 at its headers, before its body.
TEST_F(HttpTest, BodiesInFlightAreBoundedOverAllConnections) {
  HttpOptions o;
  o.max_body_bytes = 1000;
  StartHttp(o);
  asio::io_context io;
  const std::string head =
      "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
      "Content-Length: 1000\r\n\r\n";
  std::vector<std::unique_ptr<beast::tcp_stream>> held;
  for (int i = 0; i < 16; ++i) {  // each announces a full body and sends none
    held.push_back(SendHead(io, input_->port(), head));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto extra = SendHead(io, input_->port(), head);
  http::response<http::string_body> res;
  const boost::system::error_code ec = ReadAnswer(*extra, 5, &res);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 503u) << res.body();
  EXPECT_EQ(res[http::field::retry_after], "1");
  // Once the held ones go, a request gets through again.
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(HttpClient(input_->port()).Post(Lines(0, 1)).status, 200);
}

}  // namespace
}  // namespace gapless::input
