#include "http/client.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <thread>

#include "identity/identity.h"

namespace gapless::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

TEST(HttpUrl, ParsesWhatWeSendTo) {
  auto u = ParseUrl("https://witness.example:8443/sub/add-checkpoint");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "witness.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/sub/add-checkpoint");
  u = ParseUrl("http://127.0.0.1");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  u = ParseUrl("http://[::1]:9/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9);
  for (const char* bad : {"ftp://x/", "http://", "http://h:0/", "http://h:70000/", "http://h:1x/",
                          "https://[::1/", "http://user@h/", "witness.example/add"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
}

// Serves one connection on a thread: records the request, answers `status` with `body`.
class OneShotServer {
 public:
  explicit OneShotServer(int status, std::string body, asio::ssl::context* tls = nullptr,
                         bool never_answer = false)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        port_(acceptor_.local_endpoint().port()) {
    thread_ = std::thread([this, status, body = std::move(body), tls, never_answer] {
      boost::system::error_code ec;
      tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      if (never_answer) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        return;
      }
      auto serve = [&](auto& stream) {
        beast::flat_buffer buffer;
        bhttp::request<bhttp::string_body> req;
        bhttp::read(stream, buffer, req, ec);
        if (ec) return;
        seen_ = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                std::string(req[bhttp::field::content_type]) + " " + std::string(req["X-Test"]) +
                " " + req.body();
        bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
        res.set(bhttp::field::content_type, "text/x.tlog.size");
        res.body() = body;
        res.prepare_payload();
        bhttp::write(stream, res, ec);
      };
      if (tls == nullptr) {
        serve(socket);
      } else {
        asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (!ec) serve(stream);
      }
    });
  }
  ~OneShotServer() { Finish(); }
  uint16_t port() const { return port_; }
  // Waits for the exchange to end; the request as "METHOD target type X-Test body".
  const std::string& Finish() {
    if (thread_.joinable()) {
      thread_.join();
      acceptor_.close();
    }
    return seen_;
  }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_;
  std::thread thread_;
  std::string seen_;
};

TEST(HttpClient, PostsAndReadsTheAnswer) {
  Response r;
  {
    OneShotServer server(409, "1234\n");
    Request req;
    req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/add-checkpoint";
    req.content_type = "text/plain";
    req.body = "old 0\n\nbody\n";
    req.headers.emplace_back("X-Test", "yes");
    auto got = Send(req);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    r = *got;
  }
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.content_type, "text/x.tlog.size");
  EXPECT_EQ(r.body, "1234\n");
}

TEST(HttpClient, SendsMethodTargetHeadersAndBody) {
  OneShotServer server(200, "ok");
  Request req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/a/b?c=d";
  req.content_type = "application/json";
  req.body = "{\"x\":1}";
  req.headers.emplace_back("X-Test", "yes");
  ASSERT_TRUE(Send(req).ok());
  EXPECT_EQ(server.Finish(), "POST /a/b?c=d application/json yes {\"x\":1}");
}

TEST(HttpClient, NoAnswerInTimeIsUnavailable) {
  OneShotServer server(200, "", nullptr, /*never_answer=*/true);
  Request req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  ClientOptions o;
  o.timeout_ms = 300;
  const auto start = std::chrono::steady_clock::now();
  auto r = Send(req, o);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

TEST(HttpClient, NobodyListeningIsUnavailable) {
  uint16_t port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  Request req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  EXPECT_EQ(Send(req).status().code(), StatusCode::kUnavailable);
}

class HttpsClient : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/https_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  asio::ssl::context ServerContext(const std::string& name) {
    const std::string key = dir_ + "/" + name + ".key", cert = dir_ + "/" + name + ".crt";
    EXPECT_TRUE(identity::MakeSelfSignedTls(key, cert, name).ok());
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key, asio::ssl::context::pem);
    return ctx;
  }
  std::string dir_;
};

TEST_F(HttpsClient, VerifiesThePeerAgainstTheCaFileAndTheHostName) {
  asio::ssl::context good = ServerContext("localhost");
  {
    OneShotServer server(200, "cosigned", &good);
    Request req;
    req.url = "https://localhost:" + std::to_string(server.port()) + "/add-checkpoint";
    ClientOptions o;
    o.ca_file = dir_ + "/localhost.crt";
    auto r = Send(req, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "cosigned");
  }
  // A certificate for another name, even one the client trusts, is refused.
  asio::ssl::context other = ServerContext("other.test");
  OneShotServer server(200, "cosigned", &other);
  Request req;
  req.url = "https://localhost:" + std::to_string(server.port()) + "/";
  ClientOptions o;
  o.ca_file = dir_ + "/other.test.crt";
  auto r = Send(req, o);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("TLS"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace gapless::http
