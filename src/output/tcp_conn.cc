#include "output/tcp_conn.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "identity/identity.h"

namespace gapless::output {
namespace {

std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace

bool TcpConn::Wait(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

Status TcpConn::Connect(const TcpOptions& o, Clock::time_point deadline) {
  Close();
  where_ = o.where;
  const size_t colon = o.address.rfind(':');
  std::string host = o.address.substr(0, colon);
  const std::string port = o.address.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return UnavailableError(where_ + "cannot resolve " + o.address + ": " + ::gai_strerror(rc));
  }
  Status last = UnavailableError(where_ + o.address + " has no address");
  for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (Wait(fd, POLLOUT, deadline)) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (rc != 0) {
      last =
          UnavailableError(where_ + "cannot connect to " + o.address + ": " + std::strerror(errno));
      ::close(fd);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
  }
  ::freeaddrinfo(found);
  if (fd_ < 0) return last;
  if (o.tls) {
    if (Status s = Handshake(o, host, deadline); !s.ok()) {
      Close();
      return s;
    }
  }
  return Status::Ok();
}

Status TcpConn::Handshake(const TcpOptions& o, const std::string& host,
                          Clock::time_point deadline) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) return InternalError(where_ + SslError());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  const int loaded = o.ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(ctx_)
                         : SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr);
  if (loaded != 1) {
    return InvalidArgumentError(where_ + "cannot load the CA file " + o.ca_file + ": " +
                                SslError());
  }
  if (!o.cert_file.empty()) {
    auto key = identity::ReadSecretFile(o.key_file);
    if (!key.ok())
      return Status(key.status().code(), where_ + "key_file: " + key.status().message());
    EVP_PKEY* pkey = identity::ParsePemPrivateKey(*key);
    OPENSSL_cleanse(key->data(), key->size());
    const bool loaded_pair = SSL_CTX_use_certificate_chain_file(ctx_, o.cert_file.c_str()) == 1 &&
                             pkey != nullptr && SSL_CTX_use_PrivateKey(ctx_, pkey) == 1;
    EVP_PKEY_free(pkey);
    if (!loaded_pair) {
      return InvalidArgumentError(where_ + "cannot load the client certificate " + o.cert_file +
                                  " and key " + o.key_file + ": " + SslError());
    }
  }
  ssl_ = SSL_new(ctx_);
  const std::string name = o.server_name.empty() ? host : o.server_name;
  SSL_set_tlsext_host_name(ssl_, name.c_str());
  SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_set1_host(ssl_, name.c_str());
  SSL_set_fd(ssl_, fd_);
  for (;;) {
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return Status::Ok();
    const int err = SSL_get_error(ssl_, rc);
    if ((err == SSL_ERROR_WANT_READ && Wait(fd_, POLLIN, deadline)) ||
        (err == SSL_ERROR_WANT_WRITE && Wait(fd_, POLLOUT, deadline))) {
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    std::string why = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE
                          ? std::string("timed out")
                          : SslError();
    if (verify != X509_V_OK) {
      why = std::string("the certificate of ") + name +
            " was not accepted: " + X509_verify_cert_error_string(verify);
    }
    return UnavailableError(where_ + "TLS with " + o.address + ": " + why);
  }
}

Status TcpConn::Write(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    if (ssl_ != nullptr) {
      const int n =
          SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if ((err == SSL_ERROR_WANT_WRITE && Wait(fd_, POLLOUT, deadline)) ||
          (err == SSL_ERROR_WANT_READ && Wait(fd_, POLLIN, deadline))) {
        continue;
      }
      return UnavailableError(
          where_ +
          "sending: " + (err == SSL_ERROR_WANT_WRITE ? std::string("timed out") : SslError()));
    }
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Wait(fd_, POLLOUT, deadline)) {
      continue;
    }
    return UnavailableError(
        where_ + "sending: " + (n < 0 && errno != EAGAIN ? std::strerror(errno) : "timed out"));
  }
  return Status::Ok();
}

StatusOr<size_t> TcpConn::Read(char* buf, size_t size, Clock::time_point deadline) {
  for (;;) {
    if (ssl_ != nullptr) {
      const int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(size, 1 << 20)));
      if (n > 0) return static_cast<size_t>(n);
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      if ((err == SSL_ERROR_WANT_READ && Wait(fd_, POLLIN, deadline)) ||
          (err == SSL_ERROR_WANT_WRITE && Wait(fd_, POLLOUT, deadline))) {
        continue;
      }
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return UnavailableError(where_ + "no answer in time");
      }
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return size_t{0};  // closed
      return UnavailableError(where_ + "reading: " + SslError());
    }
    if (!Wait(fd_, POLLIN, deadline)) return UnavailableError(where_ + "no answer in time");
    const ssize_t n = ::recv(fd_, buf, size, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR || errno == EAGAIN) continue;
    if (errno == ECONNRESET) return size_t{0};
    return UnavailableError(where_ + "reading: " + std::strerror(errno));
  }
}

Status TcpConn::Drained(Clock::time_point deadline) {
  for (;;) {
    int queued = 0;
    if (::ioctl(fd_, SIOCOUTQ, &queued) != 0) {
      return UnavailableError(where_ + "SIOCOUTQ: " + std::strerror(errno));
    }
    if (queued == 0) return Status::Ok();
    // A peer that closed or reset shows as an error on the socket.
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return UnavailableError(where_ + "the connection failed: " + std::strerror(err));
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return UnavailableError(where_ + "the receiver closed the connection with " +
                              std::to_string(queued) + " bytes not acknowledged");
    }
    if (Clock::now() > deadline) {
      return UnavailableError(where_ + std::to_string(queued) +
                              " bytes not acknowledged by the receiver's TCP in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void TcpConn::Close() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
  ssl_ = nullptr;
  ctx_ = nullptr;
  fd_ = -1;
}

}  // namespace gapless::output
