// The nats output: NATS JetStream through libnats (Debian libnats-dev). Each record is
// published to `subject` with the header Nats-Msg-Id = its idempotency key, and is
// delivered when JetStream's PubAck for it arrives: the stream stored it (or, with
// "duplicate": true, had already stored it within the stream's duplicate window, so a
// resend after a kill -9 makes no second message). A PubAck error (no stream for the
// subject, the expected stream does not match, the stream is full) or no PubAck within
// timeout_ms leaves the record to be sent again; nothing is confirmed by the publish
// alone. With `stream` set, JetStream refuses a message that would land in another
// stream (Nats-Expected-Stream).
//
// libnats answers on its own threads: OnAck() writes the batch's results under mu_;
// Send() waits in js_PublishAsyncComplete for every PubAck or the timeout, then takes
// back what is still pending, so a late PubAck of an earlier batch is dropped (that
// record was already marked to be sent again).
#include <nats/nats.h>

#include <map>

#include "base/mutex.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

constexpr char kMsgId[] = "Nats-Msg-Id";

std::string NatsError(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (last != nullptr && *last != '\0' && text != last) text += std::string(" (") + last + ")";
  return text;
}

class NatsSink final : public Sink {
 public:
  NatsSink(const OutputOptions& o, std::string token) : o_(o), token_(std::move(token)) {}
  ~NatsSink() override { Close(); }

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    results->assign(items.size(), ItemResult{ItemResult::State::kRetry, "no PubAck"});
    if (js_ == nullptr) {
      if (Status s = Connect(); !s.ok()) {
        Close();
        return s;
      }
    }
    {
      MutexLock lock(&mu_);
      waiting_.clear();
      for (size_t i = 0; i < items.size(); ++i) waiting_[items[i]->id] = i;
      results_ = results;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (!o_.stream.empty()) po.ExpectStream = o_.stream.c_str();
    Status failed = Status::Ok();
    for (const Item* item : items) {
      natsMsg* msg = nullptr;
      natsStatus s = natsMsg_Create(&msg, o_.subject.c_str(), nullptr, item->body.data(),
                                    static_cast<int>(item->body.size()));
      if (s == NATS_OK) s = natsMsgHeader_Set(msg, kMsgId, item->id.c_str());
      if (s == NATS_OK) s = js_PublishMsgAsync(js_, &msg, &po);
      natsMsg_Destroy(msg);  // no-op when the library took it
      if (s != NATS_OK) {
        failed = UnavailableError(Where() + "publishing: " + NatsError(s));
        break;
      }
    }
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = o_.timeout_ms;
    const natsStatus done = js_PublishAsyncComplete(js_, &wait);
    if (done != NATS_OK) {
      // Whatever is still unanswered is ours again (and is sent again by the caller).
      natsMsgList pending;
      if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
    }
    size_t delivered = 0;
    {
      MutexLock lock(&mu_);
      results_ = nullptr;
      waiting_.clear();
      for (const ItemResult& r : *results) delivered += r.state == ItemResult::State::kDelivered;
    }
    if (delivered > 0) return Status::Ok();  // the rest are kRetry with their reasons
    if (!failed.ok()) return failed;
    if (done != NATS_OK) {
      return UnavailableError(Where() + "no PubAck within " + std::to_string(o_.timeout_ms) +
                              " ms (" + NatsError(done) + ")");
    }
    return Status::Ok();
  }

 private:
  std::string Where() const { return "nats output " + o_.name + ": "; }

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<NatsSink*>(closure);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, kMsgId, &id) == NATS_OK && id != nullptr) {
      MutexLock lock(&self->mu_);
      auto it = self->waiting_.find(id);
      if (self->results_ != nullptr && it != self->waiting_.end()) {
        ItemResult& r = (*self->results_)[it->second];
        if (pa != nullptr) {
          r = ItemResult{ItemResult::State::kDelivered, ""};
        } else {
          std::string why = pae != nullptr && pae->ErrText != nullptr
                                ? std::string(pae->ErrText)
                                : std::string(pae != nullptr ? natsStatus_GetText(pae->Err) : "?");
          if (pae != nullptr && pae->ErrCode != 0) {
            why += " (JetStream error " + std::to_string(static_cast<int>(pae->ErrCode)) + ")";
          }
          r = ItemResult{ItemResult::State::kRetry, why};
        }
        self->waiting_.erase(it);
      }
    }
    natsMsg_Destroy(msg);
  }

  Status Connect() {
    natsStatus s = natsOptions_Create(&opts_);
    if (s == NATS_OK) s = natsOptions_SetURL(opts_, o_.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(opts_, ("gapless output " + o_.name).c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts_, o_.timeout_ms);
    // libnats reconnects on its own, forever; what it buffers meanwhile is only ever
    // confirmed by a PubAck.
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts_, o_.retry_min_ms);
    if (s == NATS_OK && !token_.empty()) s = natsOptions_SetToken(opts_, token_.c_str());
    if (s == NATS_OK && o_.url.rfind("tls://", 0) == 0) {
      s = natsOptions_SetSecure(opts_, true);
      if (s == NATS_OK && !o_.ca_file.empty()) {
        s = natsOptions_LoadCATrustedCertificates(opts_, o_.ca_file.c_str());
      }
    }
    if (s != NATS_OK) return InvalidArgumentError(Where() + "options: " + NatsError(s));
    s = natsConnection_Connect(&nc_, opts_);
    if (s != NATS_OK) {
      return UnavailableError(Where() + "cannot connect to " + o_.url + ": " + NatsError(s));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = o_.timeout_ms;
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.AckHandler = &NatsSink::OnAck;
    jo.PublishAsync.AckHandlerClosure = this;
    jo.PublishAsync.StallWait = o_.timeout_ms;
    s = natsConnection_JetStream(&js_, nc_, &jo);
    if (s != NATS_OK) return UnavailableError(Where() + "JetStream: " + NatsError(s));
    return Status::Ok();
  }

  void Close() {
    if (js_ != nullptr) {
      natsMsgList pending;
      if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
      jsCtx_Destroy(js_);
    }
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
    if (opts_ != nullptr) natsOptions_Destroy(opts_);
    js_ = nullptr;
    nc_ = nullptr;
    opts_ = nullptr;
  }

  const OutputOptions o_;
  const std::string token_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  Mutex mu_;
  std::map<std::string, size_t, std::less<>> waiting_ GUARDED_BY(mu_);  // Msg-Id -> index
  std::vector<ItemResult>* results_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewNatsSink(const OutputOptions& o) {
  std::string token;
  if (!o.token_file.empty()) {
    ASSIGN_OR_RETURN(token, ReadSecretFile(o.name, "token_file", o.token_file));
  }
  return std::unique_ptr<Sink>(new NatsSink(o, std::move(token)));
}

}  // namespace gapless::output
