// The 2024 incident, replayed: under continuous load the agent's destination is switched
// between two listen addresses of the collector every 5-50 ms, with batches in flight.
// Fails if no record is acknowledged for 5 s at any point (a stall or deadlock), and at
// the end the collector must hold every seq exactly once, with the agent's Merkle root.
//
// GAPLESS_FLAP_SECONDS sets the duration (default 60; the sanitizer builds run less,
// see tests/CMakeLists.txt).
#include <atomic>
#include <random>

#include "collector/transport_fixture.h"

namespace gapless::transport {
namespace {

int FlapSeconds() {
  const char* v = std::getenv("GAPLESS_FLAP_SECONDS");
  return v != nullptr ? std::max(1, std::atoi(v)) : 60;
}

TEST_F(TransportFixture, EndpointFlappingUnderLoadNeverStallsAndLosesNothing) {
  OpenSpool();
  StartCollector();
  DestinationOptions d = Destination(0);
  d.window = 4;
  d.batch_records = 512;
  Sender* sender = StartSender(d, key_);

  std::atomic<bool> stop{false};
  std::thread load([&] {  // about 20,000 records a second, synced as the ingest path does
    uint64_t i = 0;
    while (!stop) {
      for (int k = 0; k < 100; ++k) {
        ASSERT_TRUE(
            spool_->Append("flap record " + std::to_string(i++) + std::string(180, 'x')).ok());
      }
      ASSERT_TRUE(spool_->Sync().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  std::mt19937 rng(2024);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(FlapSeconds());
  uint64_t last_acked = 0;
  auto last_progress = start;
  double worst_stall_s = 0;
  uint64_t switches = 0;
  while (std::chrono::steady_clock::now() < end) {
    DestinationOptions next = Destination(switches % 2);
    next.window = d.window;
    next.batch_records = d.batch_records;
    sender->Reconfigure(next);
    ++switches;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 46));
    const auto now = std::chrono::steady_clock::now();
    const uint64_t acked = sender->stats().acked_next;
    if (acked > last_acked) {
      last_acked = acked;
      last_progress = now;
    }
    const double stall = std::chrono::duration<double>(now - last_progress).count();
    worst_stall_s = std::max(worst_stall_s, stall);
    if (stall >= 5.0) {
      stop = true;
      load.join();
      FAIL() << "no record acknowledged for 5 s after " << switches << " switches; "
             << sender->stats().connects << " connections reached the welcome, acked " << acked
             << ", spool head " << spool_->durable_size();
    }
  }
  stop = true;
  load.join();
  const uint64_t n = spool_->next_seq();
  ASSERT_TRUE(WaitFor([&] { return sender->stats().acked_next == n; }, 20000))
      << sender->stats().acked_next << " of " << n;
  const SenderStats st = sender->stats();
  std::printf("%llu records, %llu switches, %llu connections, worst ack gap %.2f s\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(switches),
              static_cast<unsigned long long>(st.connects), worst_stall_s);
  senders_.clear();
  ExpectStoredExactly(n);
}

}  // namespace
}  // namespace gapless::transport
