// A TCP proxy for tests that injects network faults between an agent and a collector:
// delay, a connection cut after some bytes (mid-frame), a reset (RST), and a blackhole
// (the connection stays open but nothing moves, in either direction).
//
// Plain blocking sockets and threads, so it shares nothing with the code under test:
// one thread accepts, and each connection has a supervisor thread and one pump thread
// per direction. Pumps poll with a short timeout and re-read the fault settings between
// chunks. Only a connection's supervisor closes its sockets, after both pumps are
// joined and under the connection's lock, so no descriptor is closed while another
// thread may still use it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace gapless::testing {

class FaultProxy {
 public:
  enum Direction { kToUpstream = 0, kToClient = 1 };

  // Listens on 127.0.0.1 (an ephemeral port) and forwards to 127.0.0.1:upstream_port.
  explicit FaultProxy(uint16_t upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = Loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FaultProxy() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::shared_ptr<Conn>> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns.swap(conns_);
    }
    for (auto& c : conns) {
      {
        // Wakes a pump blocked in send() to a peer that stopped reading.
        std::lock_guard<std::mutex> fd_lock(c->fd_mu);
        if (!c->closed) {
          for (int fd : c->fd) ::shutdown(fd, SHUT_RDWR);
        }
      }
      c->supervisor.join();
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  bool ok() const { return listen_fd_ >= 0; }
  uint16_t port() const { return port_; }

  // Every forwarded chunk waits up to max_ms (uniformly random) first; 0 turns it off.
  void SetDelay(int max_ms) { delay_max_ms_ = max_ms; }
  // Each live connection is closed (FIN both ways) once `bytes` more bytes have gone in
  // direction d; the chunk that crosses the limit is forwarded only in part.
  void CutLiveAfter(Direction d, int64_t bytes) {
    ForEachLive([&](Conn& c) { c.cut_at[d] = c.sent[d] + bytes; });
  }
  // Each live connection is aborted with a TCP reset on both sides.
  void ResetLive() {
    ForEachLive([](Conn& c) { c.reset = true; });
  }
  // Each live connection stops moving bytes for good; its sockets stay open. New
  // connections are not affected (a dead NAT mapping or a hung middlebox).
  void BlackholeLive() {
    ForEachLive([](Conn& c) { c.blackholed = true; });
  }

  int accepted() const { return accepted_; }
  int faults() const { return faults_; }  // connections cut or reset so far

 private:
  struct Conn {
    int fd[2] = {-1, -1};  // [0] client side, [1] upstream side
    std::atomic<int64_t> sent[2] = {0, 0};
    std::atomic<int64_t> cut_at[2] = {INT64_MAX, INT64_MAX};
    std::atomic<bool> reset{false}, blackholed{false}, done{false};
    std::mutex fd_mu;
    bool closed = false;  // GUARDED_BY(fd_mu)
    std::thread supervisor;
  };

  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  template <typename F>
  void ForEachLive(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) {
      if (!c->done) f(*c);
    }
  }

  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = Loopback(upstream_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(upstream);
        ::close(client);  // the collector is down: the client sees a closed connection
        continue;
      }
      ++accepted_;
      auto c = std::make_shared<Conn>();
      c->fd[0] = client;
      c->fd[1] = upstream;
      Conn* raw = c.get();
      c->supervisor = std::thread([this, raw] { Supervise(*raw); });
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(std::move(c));
    }
  }

  void Supervise(Conn& c) {
    std::thread up([&] { Pump(c, kToUpstream); });
    std::thread down([&] { Pump(c, kToClient); });
    up.join();
    down.join();
    if (c.reset) {
      const linger abort{1, 0};  // close() then sends RST instead of FIN
      for (int fd : c.fd) ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    }
    std::lock_guard<std::mutex> lock(c.fd_mu);
    for (int fd : c.fd) ::close(fd);
    c.closed = true;
  }

  // Moves bytes from one side to the other until either side closes, a fault ends the
  // connection, or the proxy stops. A pump that ends marks the connection done, which
  // ends the other pump too.
  void Pump(Conn& c, Direction d) {
    const int from = c.fd[d == kToUpstream ? 0 : 1];
    const int to = c.fd[d == kToUpstream ? 1 : 0];
    std::mt19937 rng(static_cast<uint32_t>(from * 7919 + d));
    char buf[16384];
    while (!stop_ && !c.done) {
      if (c.reset) break;
      if (c.blackholed) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      pollfd p{from, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      if (c.blackholed || c.reset) continue;  // decided while this pump waited
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (const int max = delay_max_ms_; max > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (max + 1)));
      }
      const int64_t room = c.cut_at[d] - c.sent[d];
      const bool cut = room <= n;
      if (cut) n = static_cast<ssize_t>(std::max<int64_t>(room, 0));
      if (n > 0 && !SendAll(to, buf, static_cast<size_t>(n))) break;
      c.sent[d] += n;
      if (cut) {
        ++faults_;
        break;
      }
    }
    if (c.reset && !c.done.exchange(true)) ++faults_;
    c.done = true;
  }

  static bool SendAll(int fd, const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  const uint16_t upstream_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> delay_max_ms_{0};
  std::atomic<int> accepted_{0}, faults_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Conn>> conns_;  // GUARDED_BY(mu_)
};

}  // namespace gapless::testing
