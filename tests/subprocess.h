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

// A loopback port free right now (the kernel's pick, so parallel tests do not collide as
// ports derived from pids did). type: SOCK_STREAM or SOCK_DGRAM.
inline uint16_t FreePort(int type = SOCK_STREAM) {
  const int fd = ::socket(AF_INET, type, 0);
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
