// A real nats-server with JetStream (Debian nats-server), started by the test on a free
// loopback port with its own store directory and stopped by pid, and a small libnats
// client to make a stream and read back what it holds.
#pragma once

#include <nats/nats.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "subprocess.h"

namespace gapless::testing {

class NatsPeer {
 public:
  explicit NatsPeer(std::filesystem::path dir) : dir_(std::move(dir)), port_(FreePort()) {
    std::filesystem::create_directories(dir_ / "js");
  }
  ~NatsPeer() {
    Disconnect();
    Stop();
  }

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  bool Start() {
    return server_.Start({"/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p",
                          std::to_string(port_), "-sd", (dir_ / "js").string()},
                         {}, "", (dir_ / "nats-server.log").string());
  }
  // SIGINT: nats-server syncs its store and leaves with status 0 (its durability under
  // kill -9 is its own configuration, not what these tests are about). The wait status,
  // or -1 if it did not leave.
  int Stop() {
    Disconnect();
    server_.Signal(SIGINT);
    return server_.Wait(std::chrono::seconds(15));
  }

  // Connects the test's client, retrying while the server starts.
  bool Connect() {
    for (int i = 0; i < 100 && js_ == nullptr; ++i) {
      if (natsConnection_ConnectTo(&nc_, url().c_str()) == NATS_OK &&
          natsConnection_JetStream(&js_, nc_, nullptr) == NATS_OK) {
        return true;
      }
      Disconnect();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return js_ != nullptr;
  }
  void Disconnect() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
    js_ = nullptr;
    nc_ = nullptr;
  }

  // A file-backed stream on subject, deduplicating Msg-Ids over `window`.
  bool AddStream(const std::string& name, const std::string& subject,
                 std::chrono::seconds window = std::chrono::minutes(30)) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = std::chrono::nanoseconds(window).count();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return s == NATS_OK;
  }

  // How many messages the stream holds; -1 if it cannot be asked.
  int64_t Count(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr) != NATS_OK) return -1;
    const auto n = static_cast<int64_t>(si->State.Msgs);
    jsStreamInfo_Destroy(si);
    return n;
  }

  // Every message of the stream, read in order: Nats-Msg-Id -> how many times.
  std::map<std::string, int> MsgIds(const std::string& stream, const std::string& subject) {
    std::map<std::string, int> ids;
    const int64_t n = Count(stream);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    natsSubscription* sub = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (n <= 0 || js_SubscribeSync(&sub, js_, subject.c_str(), nullptr, &so, &jerr) != NATS_OK) {
      return ids;
    }
    for (int64_t i = 0; i < n; ++i) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK) break;
      const char* id = nullptr;
      if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) ++ids[id];
      natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    return ids;
  }

 private:
  std::filesystem::path dir_;
  uint16_t port_;
  Subprocess server_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace gapless::testing
