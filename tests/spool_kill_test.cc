// kill -9 of a real process writing a spool, at random moments, repeatedly: every record
// the writer acknowledged as durable is present and unchanged after each restart, seqs
// stay dense and are never reused, and recovery sees a torn tail at most, never damage.
//
// GAPLESS_CRASH_TRIALS sets the number of trials (default 5; `make test-long` runs 100).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "env/env.h"
#include "spool/spool.h"

namespace gapless {
namespace {

int Trials() {
  const char* v = std::getenv("GAPLESS_CRASH_TRIALS");
  return v != nullptr ? std::atoi(v) : 5;
}

// Runs the writer for `ms`, SIGKILLs it, returns what it acknowledged.
std::map<uint64_t, std::string> RunAndKill(const std::string& dir, int ms) {
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl(GAPLESS_CRASH_WRITER, GAPLESS_CRASH_WRITER, dir.c_str(), "3", nullptr);
    _exit(127);
  }
  close(out[1]);
  usleep(static_cast<useconds_t>(ms) * 1000);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer died early";
  // Everything it wrote before dying is in the pipe.
  std::string all;
  char buf[65536];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) all.append(buf, n);
  close(out[0]);
  std::map<uint64_t, std::string> acked;
  size_t pos = 0;
  for (size_t nl; (nl = all.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    std::string line = all.substr(pos, nl - pos);
    size_t sp = line.find(' ');
    acked[std::stoull(line.substr(0, sp))] = line.substr(sp + 1);
  }
  return acked;
}

TEST(SpoolKill, AcknowledgedRecordsSurviveKill9) {
  char tmpl[] = "/tmp/gapless_kill_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/spool";
  std::mt19937 rng(std::random_device{}());
  std::map<uint64_t, std::string> acked_ever;
  for (int trial = 0; trial < Trials(); ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    auto acked = RunAndKill(dir, 50 + static_cast<int>(rng() % 300));
    for (const auto& [seq, payload] : acked) {
      auto [it, inserted] = acked_ever.emplace(seq, payload);
      ASSERT_TRUE(inserted || it->second == payload) << "seq " << seq << " reused";
    }
    spool::RecoveryReport report;
    auto s = spool::Spool::Open(env::Env::Posix(), dir, spool::Options{}, &report);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(report.damage.empty());
    EXPECT_TRUE(report.merkle_known);
    auto reader = (*s)->NewReader(0);
    ASSERT_TRUE(reader.ok());
    spool::Record r;
    std::map<uint64_t, std::string> found;
    uint64_t expect_seq = 0;
    for (;;) {
      auto more = (*reader)->Next(&r);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      ASSERT_EQ(r.seq, expect_seq++) << "seqs must be dense";
      found[r.seq] = r.payload;
    }
    for (const auto& [seq, payload] : acked_ever) {
      auto it = found.find(seq);
      ASSERT_NE(it, found.end()) << "acknowledged record " << seq << " lost";
      ASSERT_EQ(it->second, payload) << "acknowledged record " << seq << " changed";
    }
    // Records written but not yet acknowledged when the kill came may survive; they
    // are never reported lost or duplicated.
    std::printf("trial %d: %zu acknowledged this run, %zu records in spool\n", trial, acked.size(),
                found.size());
    ASSERT_TRUE((*s)->Close().ok());
  }
  EXPECT_GT(acked_ever.size(), 100u) << "the writer acknowledged too little to test anything";
  (void)std::system((std::string("rm -rf ") + tmpl).c_str());
}

}  // namespace
}  // namespace gapless
