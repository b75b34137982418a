// Test helper: appends records to a spool from several threads and prints
// "<seq> <payload>" for each only after WaitDurable(seq) returned — the acknowledgement a
// real input would give its sender. Runs until killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "env/env.h"
#include "spool/spool.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SPOOL_DIR THREADS\n", argv[0]);
    return 2;
  }
  gapless::spool::Options options;
  options.segment_bytes = 256 * 1024;  // many segment rolls in a short run
  options.max_record_bytes = 4096;
  auto spool = gapless::spool::Spool::Open(gapless::env::Env::Posix(), argv[1], options);
  if (!spool.ok()) {
    std::fprintf(stderr, "open: %s\n", spool.status().ToString().c_str());
    return 1;
  }
  std::mutex out_mu;
  std::vector<std::thread> threads;
  const int n = std::atoi(argv[2]);
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) {
        std::string payload = "pid" + std::to_string(getpid()) + "-t" + std::to_string(t) + "-" +
                              std::to_string(i) + "-" + std::string(i % 200, 'x');
        auto r = (*spool)->Append(payload);
        if (!r.ok() || !(*spool)->WaitDurable(r->seq).ok()) std::abort();
        std::string line = std::to_string(r->seq) + " " + payload + "\n";
        std::lock_guard<std::mutex> lock(out_mu);
        if (write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::abort();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}
