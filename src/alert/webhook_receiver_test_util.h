// A test HTTP receiver for alert webhooks and Alertmanager: answers every request with a
// settable status and records the ones it took (2xx). For tests only.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gapless::alert::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// An HTTP receiver on a thread: answers every request with status(), records the 2xx
// ones (target, headers that matter, body). Stop/Start on the same port.
class Receiver {
 public:
  explicit Receiver(uint16_t port = 0) { Start(port); }
  ~Receiver() { Stop(); }
  void Start(uint16_t port) {
    acceptor_ = std::make_unique<tcp::acceptor>(ioc_);
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    acceptor_->open(ep.protocol());
    acceptor_->set_option(asio::socket_base::reuse_address(true));
    acceptor_->bind(ep);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    stop_ = false;
    thread_ = std::thread([this] {
      while (!stop_) {
        boost::system::error_code ec;
        tcp::socket socket(ioc_);
        acceptor_->accept(socket, ec);
        if (ec) return;
        beast::flat_buffer buffer;
        bhttp::request<bhttp::string_body> req;
        bhttp::read(socket, buffer, req, ec);
        if (ec) continue;
        bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status.load()), 11};
        res.prepare_payload();
        if (status.load() / 100 == 2) {
          std::lock_guard<std::mutex> lock(mu_);
          got_.push_back({std::string(req.target()), std::string(req["X-Gapless-Timestamp"]),
                          std::string(req["X-Gapless-Signature"]), req.body()});
        }
        bhttp::write(socket, res, ec);
      }
    });
  }
  void Stop() {
    stop_ = true;
    // Wakes the blocked accept (Linux); the socket is closed only once the thread ended.
    if (acceptor_) ::shutdown(acceptor_->native_handle(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (acceptor_) {
      boost::system::error_code ec;
      acceptor_->close(ec);
    }
  }
  uint16_t port() const { return port_; }
  struct Got {
    std::string target, timestamp, signature, body;
  };
  std::vector<Got> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  std::atomic<int> status{200};

 private:
  asio::io_context ioc_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Got> got_;
};

}  // namespace gapless::alert::testing
