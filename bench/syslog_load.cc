// Load generator for the syslog benchmark, run as its own process.
//   syslog_load send HOST PORT COUNT   sends COUNT newline-framed RFC 5424 messages of
//                                      ~250 bytes as fast as TCP allows, then closes
//   syslog_load sink PORT COUNT        a null sink: accepts one connection, reads and
//                                      discards until COUNT lines arrived, then exits
// Both print "seconds=<wall time>" at the end.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One message, padded to ~250 bytes, numbered.
void AppendMessage(std::string* out, uint64_t i) {
  char head[160];
  const int n =
      std::snprintf(head, sizeof(head),
                    "<134>1 2026-11-22T12:00:00.000000Z bench-host loadgen 4242 ID47 "
                    "[meta seq=\"%llu\"] login ok user=alice src=10.1.2.3 seq=%llu ",
                    static_cast<unsigned long long>(i), static_cast<unsigned long long>(i));
  out->append(head, static_cast<size_t>(n));
  out->append(249 - static_cast<size_t>(n), 'x');
  out->push_back('\n');
}

int Send(const char* host, int port, uint64_t count) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host, &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    std::perror("connect");
    return 1;
  }
  const double start = Now();
  std::string buf;
  for (uint64_t i = 0; i < count;) {
    buf.clear();
    for (; i < count && buf.size() < 256 * 1024; ++i) AppendMessage(&buf, i);
    for (size_t off = 0; off < buf.size();) {
      const ssize_t w = ::write(fd, buf.data() + off, buf.size() - off);
      if (w <= 0) {
        std::perror("write");
        return 1;
      }
      off += static_cast<size_t>(w);
    }
  }
  ::shutdown(fd, SHUT_WR);
  char c;
  while (::read(fd, &c, 1) > 0) {
  }
  ::close(fd);
  std::printf("seconds=%.3f\n", Now() - start);
  return 0;
}

int Sink(int port, uint64_t count) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 || ::listen(lfd, 1) != 0) {
    std::perror("bind");
    return 1;
  }
  std::printf("listening\n");
  std::fflush(stdout);
  const int fd = ::accept(lfd, nullptr, nullptr);
  const double start = Now();
  static char buf[256 * 1024];
  uint64_t lines = 0;
  for (ssize_t r; lines < count && (r = ::read(fd, buf, sizeof(buf))) > 0;) {
    for (const char* p = buf; (p = static_cast<const char*>(std::memchr(p, '\n', buf + r - p)));
         ++p) {
      ++lines;
    }
  }
  std::printf("seconds=%.3f lines=%llu\n", Now() - start, static_cast<unsigned long long>(lines));
  ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "send") == 0) {
    return Send(argv[2], std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10));
  }
  if (argc == 4 && std::strcmp(argv[1], "sink") == 0) {
    return Sink(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10));
  }
  std::fprintf(stderr, "usage: syslog_load send HOST PORT COUNT | syslog_load sink PORT COUNT\n");
  return 2;
}
