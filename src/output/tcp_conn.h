// A client TCP connection for the stream outputs (relp, syslog): plain or TLS
// (OpenSSL; the peer's certificate verified against ca_file or the system's CAs, and its
// name checked), every step under a deadline, the name resolved again at every connect
// (an endpoint that moved is followed). Not thread-safe: one output thread owns it.
// OpenSSL writes with write(2): the process must ignore SIGPIPE (gapless's main does).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"
#include "output/output.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace gapless::output {

struct TcpOptions {
  std::string address;  // host:port
  bool tls = false;
  std::string ca_file;      // tls: PEM CA file; empty: the system's CAs
  std::string server_name;  // tls: the name the certificate must carry; empty: the host
  std::string cert_file;    // tls: our own certificate (PEM), for receivers that ask for one
  std::string key_file;     // tls: its key (mode 0600)
  std::string where;        // prefix of error messages ("relp output x: ")
};

// The connection options of a relp or syslog output.
inline TcpOptions TcpOptionsOf(const OutputOptions& o) {
  return TcpOptions{o.address,
                    o.tls,
                    o.ca_file,
                    o.server_name,
                    o.cert_file,
                    o.key_file,
                    o.type + " output " + o.name + ": "};
}

class TcpConn {
 public:
  using Clock = std::chrono::steady_clock;

  TcpConn() = default;
  ~TcpConn() { Close(); }
  TcpConn(const TcpConn&) = delete;
  TcpConn& operator=(const TcpConn&) = delete;

  Status Connect(const TcpOptions& o, Clock::time_point deadline);
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  Status Write(std::string_view data, Clock::time_point deadline);
  // Waits for bytes and reads some: the count, 0 when the peer closed. kUnavailable on a
  // timeout or an error.
  StatusOr<size_t> Read(char* buf, size_t size, Clock::time_point deadline);
  // Waits until the peer's TCP has acknowledged every byte written so far (the socket's
  // send queue is empty): the most a protocol without answers can know.
  Status Drained(Clock::time_point deadline);
  void Close();

 private:
  static bool Wait(int fd, short events, Clock::time_point deadline);
  Status Handshake(const TcpOptions& o, const std::string& host, Clock::time_point deadline);

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string where_;
};

}  // namespace gapless::output
