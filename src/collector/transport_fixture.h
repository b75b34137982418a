// Test helpers for agent ↔ collector tests, in process: a collector with a self-signed
// certificate and an enrolled agent key in a temporary directory, a spool, and ways to
// read back what the collector stored.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "event/event.h"
#include "identity/identity.h"
#include "spool/spool.h"
#include "store/stream_store.h"
#include "transport/sender.h"

namespace gapless::transport {

inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = std::string(::testing::TempDir()) + prefix + "_XXXXXX";
  return std::string(mkdtemp(tmpl.data()));
}

// Polls until pred() or the timeout; returns pred().
inline bool WaitFor(const std::function<bool()>& pred, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class TransportFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("transport");
    ASSERT_TRUE(
        identity::MakeSelfSignedTls(dir_ + "/tls.key", dir_ + "/tls.crt", "collector.test").ok());
    auto key = identity::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::shared_ptr<const identity::SigningKey>(std::move(*key));
    Enroll("agent-1", key_->public_key());
    copts_.data_dir = dir_ + "/collector";
    copts_.tls_cert = dir_ + "/tls.crt";
    copts_.tls_key = dir_ + "/tls.key";
    copts_.enrolled_keys = dir_ + "/enrolled";
    auto collector_key = identity::SigningKey::Generate();
    ASSERT_TRUE(collector_key.ok());
    ASSERT_TRUE((*collector_key)->Save(dir_ + "/collector.key").ok());
    copts_.signing_key = dir_ + "/collector.key";
    copts_.listen = {"127.0.0.1:0", "127.0.0.1:0"};
  }
  void TearDown() override {
    senders_.clear();
    if (collector_) collector_->Stop();
    spool_.reset();
  }

  void Enroll(const std::string& id, const identity::PublicKey& key) {
    std::ofstream(dir_ + "/enrolled", std::ios::app)
        << id << " " << identity::FormatPublicKey(key) << "\n";
  }

  void StartCollector() {
    auto c = collector::Collector::Start(env::Env::Posix(), copts_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    collector_ = std::move(*c);
  }

  void OpenSpool(const spool::Options& o = {}) {
    auto s = spool::Spool::Open(env::Env::Posix(), dir_ + "/spool", o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    spool_ = std::move(*s);
  }

  // A drop_oldest spool of 256 KiB filled with 3000 events of ~210 bytes (observed now)
  // while no collector listened: its oldest records were dropped and declared lost (LOSS
  // records with reason spool_full_drop_oldest).
  void OpenOverfullDropOldestSpool() {
    spool::Options so;
    so.segment_bytes = 64 << 10;
    so.quota_bytes = 256 << 10;
    so.full_policy = spool::FullPolicy::kDropOldest;
    so.max_record_bytes = 16 << 10;
    OpenSpool(so);
    for (int i = 0; i < 3000; ++i) {
      event::Event e;
      e.source = "test";
      e.observed_unix_ns = env::Env::Posix()->clock()->NowNanos();
      const std::string raw = "record " + std::to_string(i) + std::string(200, 'x');
      e.raw = raw;
      std::string payload;
      event::EncodeEvent(e, &payload);
      ASSERT_TRUE(spool_->Append(payload).ok());
      if (i % 16 == 15) {
        ASSERT_TRUE(spool_->Sync().ok());
      }
    }
    ASSERT_TRUE(spool_->Sync().ok());
  }

  DestinationOptions Destination(size_t listener = 0) const {
    DestinationOptions d;
    d.name = "main";
    d.address = "127.0.0.1:" + std::to_string(collector_ ? collector_->ports()[listener] : 1);
    d.server_name = "collector.test";
    d.ca_file = dir_ + "/tls.crt";
    d.backoff_initial_ms = 20;
    d.backoff_max_ms = 500;
    return d;
  }

  Sender* StartSender(const DestinationOptions& d, std::shared_ptr<const identity::SigningKey> key,
                      const std::string& agent_id = "agent-1",
                      std::function<std::string()> latest_checkpoint = nullptr) {
    auto s = Sender::Start(spool_.get(), AgentIdentity{agent_id, std::move(key), ""}, d,
                           std::move(latest_checkpoint));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    senders_.push_back(std::move(*s));
    return senders_.back().get();
  }

  // Appends n records "record <i>" and makes them durable.
  void AppendRecords(uint64_t n, size_t bytes = 100) {
    for (uint64_t i = 0; i < n; ++i) {
      std::string p = "record " + std::to_string(spool_->next_seq()) + " ";
      p.resize(std::max(p.size(), bytes), 'x');
      ASSERT_TRUE(spool_->Append(p).ok());
    }
    ASSERT_TRUE(spool_->Sync().ok());
  }

  std::string StreamDir(const std::string& agent_id = "agent-1") const {
    return collector::StreamDir(copts_.data_dir, agent_id, spool_->epoch());
  }

  // Every stored (seq, type, payload), in file order.
  struct Stored {
    uint64_t seq;
    spool::FrameType type;
    std::string payload;
  };
  std::vector<Stored> ReadStored(const std::string& agent_id = "agent-1") const {
    std::vector<Stored> out;
    const std::string d = StreamDir(agent_id);
    if (!env::Env::Posix()->FileExists(d)) return out;
    EXPECT_TRUE(
        store::ForEachStoredRecord(env::Env::Posix(), d,
                                   [&](uint64_t seq, spool::FrameType t, std::string_view p) {
                                     out.push_back({seq, t, std::string(p)});
                                   })
            .ok());
    return out;
  }

  // Checks the collector holds every seq below n exactly once, and that its Merkle root
  // equals the spool's for that size. Stops the collector first (opening a store
  // recovers it, which only its owner may do).
  void ExpectStoredExactly(uint64_t n) {
    if (collector_) collector_->Stop();
    const auto stored = ReadStored();
    ASSERT_EQ(stored.size(), n);
    for (uint64_t i = 0; i < n; ++i) {
      ASSERT_EQ(stored[i].seq, i) << "a seq is missing or stored twice";
    }
    auto st = store::StreamStore::Open(env::Env::Posix(), StreamDir() + "", spool_->epoch(), {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    auto root = (*st)->Root();
    ASSERT_TRUE(root.ok());
    auto cp = spool_->DurableCheckpoint();
    ASSERT_TRUE(cp.ok());
    if (cp->size == n) {
      EXPECT_EQ(*root, cp->root) << "collector and agent disagree on the Merkle root";
    }
  }

  std::string dir_;
  std::shared_ptr<const identity::SigningKey> key_;
  collector::CollectorOptions copts_;
  std::unique_ptr<collector::Collector> collector_;
  std::unique_ptr<spool::Spool> spool_;
  std::vector<std::unique_ptr<Sender>> senders_;
};

}  // namespace gapless::transport
