// A child process for multi-process tests: started with fork/exec, output to files,
// stopped by pid only (never by name: the machine's own daemons are not ours).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace gapless::testing {

// A loopback port free right now, for a server a test starts (itself or a peer such as
// syslog-ng). Drawn at random below the kernel's ephemeral range (ip_local_port_range,
// 32768.. by default) and checked by binding it: a kernel pick from inside that range can
// be taken by any outgoing connection of a test running beside (CI saw syslog-ng fail to
// bind such a port under ctest -j2). type: SOCK_STREAM or SOCK_DGRAM.
inline uint16_t FreePort(int type = SOCK_STREAM) {
  static uint32_t state =
      static_cast<uint32_t>(::getpid()) * 2654435761u ^
      static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const auto bindable = [type](uint16_t port) {
    const int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  };
  for (int attempt = 0; attempt < 200; ++attempt) {
    state = state * 1664525u + 1013904223u;
    const auto port = static_cast<uint16_t>(20000 + (state >> 8) % 12000);  // 20000..31999
    if (bindable(port)) return port;
  }
  const int fd = ::socket(AF_INET, type, 0);  // all taken (never seen): the kernel's pick
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// How many kill -9 trials a crash test runs: GAPLESS_CRASH_TRIALS (default 5; `make
// test-long`: 100).
inline int CrashTrials() {
  const char* v = std::getenv("GAPLESS_CRASH_TRIALS");
  return v != nullptr ? std::max(1, std::atoi(v)) : 5;
}

class Subprocess {
 public:
  // argv[0] is the program path. env entries ("K=V") are added to the environment.
  // stdin_file, if not empty, is opened as standard input; stdout and stderr go to
  // log_file (or /dev/null).
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
             const std::string& stdin_file = "", const std::string& log_file = "") {
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      const int in = ::open(stdin_file.empty() ? "/dev/null" : stdin_file.c_str(), O_RDONLY);
      const int out = ::open(log_file.empty() ? "/dev/null" : log_file.c_str(),
                             O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return true;
  }

  // Waits up to timeout for the child to exit; returns its wait status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  ~Subprocess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace gapless::testing
