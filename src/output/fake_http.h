// The HTTP side of the FAKE downstreams tests use where no real server can be had here
// (fake_elasticsearch.h, fake_splunk_hec.h): a loopback listener on its own thread that
// reads one request per connection (what gapless's client sends) and hands it to the
// fake's Handle(). Not a server for anything but these tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <string>
#include <thread>

namespace gapless::output::testing {

class FakeHttpServer {
 public:
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;
  virtual ~FakeHttpServer() = default;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 protected:
  FakeHttpServer() = default;
  // The derived fake calls Listen() at the end of its constructor and Shutdown() first
  // in its destructor, so that Handle() never runs on a half-built or half-gone object.
  void Listen() {
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
  void Shutdown() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // One request: its head (request line and headers, without the blank line) and body.
  // The connection is closed after it returns.
  virtual void Handle(int conn, const std::string& head, const std::string& body) = 0;

  static std::string Lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  // A header's value from a head ("" if absent); the name in lower case.
  static std::string Header(const std::string& head, const std::string& name) {
    const std::string lower = Lower(head);
    const size_t at = lower.find("\r\n" + name + ":");
    if (at == std::string::npos) return "";
    size_t b = at + name.size() + 3;
    while (b < head.size() && head[b] == ' ') ++b;
    return head.substr(b, head.find("\r\n", b) - b);
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
  static std::string Response(int status, const char* text, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + text +
           "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  static void Answer(int c, int status, const char* text, const std::string& body) {
    SendAll(c, Response(status, text, body));
  }
  // Half of the answer, then a connection reset (RST).
  static void ResetMidAnswer(int c, const std::string& full) {
    SendAll(c, full.substr(0, full.size() / 2));
    linger l{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
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
    if (header_end == std::string::npos) return;
    Handle(c, in.substr(0, header_end), in.substr(header_end + 4, length));
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gapless::output::testing
