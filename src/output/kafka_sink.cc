// The kafka output: a librdkafka producer (Debian librdkafka-dev) with acks=all and
// enable.idempotence=true. A record is delivered only when librdkafka's delivery report
// for that very message says it was written (every in-sync replica has it); that it was
// queued by rd_kafka_producev() — what some shippers count as success — means nothing
// here. Reports are served on the output's own thread (rd_kafka_flush/poll call the
// callback), tagged with the batch they belong to, so a late report of an earlier batch
// (whose records were already marked to be sent again) is ignored.
//
// The message key is the stream ("<agent>/<epoch>"), so one stream goes to one partition
// in order; the header gapless.id carries the idempotency key. The idempotent producer
// removes duplicates of its own retries; a resend of ours after a timeout or a restart of
// the collector is a new message (at-least-once), found by its gapless.id.
//
// Report errors: a message too large, or a topic that does not exist or is not
// authorized, is refused for good (the .rejected account); a fatal idempotence error
// starts a new producer; anything else (timeouts, brokers down, not enough replicas after
// librdkafka's own retries) leaves the record to be sent again.
#include <librdkafka/rdkafka.h>

#include <cstdint>

#include "base/log.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

class KafkaSink final : public Sink {
 public:
  explicit KafkaSink(const OutputOptions& o) : o_(o) {}
  ~KafkaSink() override { Close(); }

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    results->assign(items.size(), ItemResult{ItemResult::State::kRetry, "no delivery report"});
    if (rk_ == nullptr) RETURN_IF_ERROR(Open());
    ++batch_;
    results_ = results;
    size_t queued = 0;
    std::string failed;
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& item = *items[i];
      const size_t slash = item.id.rfind('/');
      const std::string_view key(item.id.data(), slash == std::string::npos ? 0 : slash);
      // The opaque names the batch and the index: reports of another batch are dropped.
      void* tag = reinterpret_cast<void*>((static_cast<uintptr_t>(batch_) << 32) | i);
      // rd_kafka_produceva, not the RD_KAFKA_V_ macros (GNU statement expressions).
      rd_kafka_vu_t vu[6];
      vu[0].vtype = RD_KAFKA_VTYPE_RKT;
      vu[0].u.rkt = topic_;
      vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
      vu[1].u.i = RD_KAFKA_MSG_F_COPY;
      vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
      vu[2].u.mem = {const_cast<char*>(item.body.data()), item.body.size()};
      vu[3].vtype = RD_KAFKA_VTYPE_KEY;
      vu[3].u.mem = {const_cast<char*>(key.data()), key.size()};
      vu[4].vtype = RD_KAFKA_VTYPE_HEADER;
      vu[4].u.header = {"gapless.id", item.id.data(), static_cast<ssize_t>(item.id.size())};
      vu[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
      vu[5].u.ptr = tag;
      rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
      for (int attempt = 0; attempt < 100; ++attempt) {
        rd_kafka_error_t* e = rd_kafka_produceva(rk_, vu, 6);
        err = e == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(e);
        if (e != nullptr) rd_kafka_error_destroy(e);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(rk_, 10);  // the local queue is full: let reports drain it
      }
      if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {  // above message.max.bytes
        (*results)[i] = ItemResult{ItemResult::State::kRejected, rd_kafka_err2str(err)};
        continue;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (*results)[i] = ItemResult{ItemResult::State::kRetry, rd_kafka_err2str(err)};
        if (failed.empty()) failed = rd_kafka_err2str(err);
        continue;
      }
      ++queued;
    }
    // Every report, or the timeout; then what is still queued is taken back (those
    // records are sent again) and reports of messages already in flight are dropped.
    rd_kafka_flush(rk_, static_cast<int>(o_.timeout_ms));
    if (rd_kafka_outq_len(rk_) > 0) {
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE);
      rd_kafka_poll(rk_, 0);
    }
    results_ = nullptr;
    char errstr[512];
    if (rd_kafka_fatal_error(rk_, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      LogWarning(Where() + "fatal producer error, starting a new producer: " + errstr);
      Close();
    }
    size_t delivered = 0;
    for (const ItemResult& r : *results) delivered += r.state != ItemResult::State::kRetry;
    if (delivered == 0 && queued == 0 && !failed.empty()) {
      return UnavailableError(Where() + "producing: " + failed);
    }
    if (delivered == 0 && queued > 0) {
      return UnavailableError(Where() + "no delivery report within " +
                              std::to_string(o_.timeout_ms) + " ms (" + (*results)[0].reason + ")");
    }
    return Status::Ok();
  }

 private:
  std::string Where() const { return "kafka output " + o_.name + ": "; }

  static void OnReport(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    const auto tag = reinterpret_cast<uintptr_t>(m->_private);
    const size_t index = tag & 0xffffffffu;
    if ((tag >> 32) != (self->batch_ & 0xffffffffu) || self->results_ == nullptr ||
        index >= self->results_->size()) {
      return;  // a report of an earlier batch
    }
    ItemResult& r = (*self->results_)[index];
    switch (m->err) {
      case RD_KAFKA_RESP_ERR_NO_ERROR:
        r = ItemResult{ItemResult::State::kDelivered, ""};
        break;
      case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        r = ItemResult{ItemResult::State::kRejected, rd_kafka_err2str(m->err)};
        break;
      default:
        r = ItemResult{ItemResult::State::kRetry, rd_kafka_err2str(m->err)};
    }
  }

  // librdkafka's own log (from its threads), into ours: warnings and worse only.
  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    if (level > 4) return;
    const std::string line = static_cast<const KafkaSink*>(rd_kafka_opaque(rk))->Where() +
                             "librdkafka " + facility + ": " + text;
    if (level <= 3) {
      LogError(line);
    } else {
      LogWarning(line);
    }
  }

  Status Open() {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const char* k, const std::string& v) {
      return rd_kafka_conf_set(conf, k, v.c_str(), errstr, sizeof errstr) == RD_KAFKA_CONF_OK;
    };
    const bool ok =
        set("bootstrap.servers", o_.address) && set("acks", "all") &&
        set("enable.idempotence", "true") && set("client.id", "gapless-" + o_.name) &&
        set("message.timeout.ms", std::to_string(std::max<int64_t>(o_.timeout_ms, 1000))) &&
        set("linger.ms", "5") && set("log.connection.close", "false") &&
        set("reconnect.backoff.ms", std::to_string(o_.retry_min_ms)) &&
        set("reconnect.backoff.max.ms", std::to_string(o_.retry_max_ms)) &&
        (o_.ca_file.empty() ||
         (set("security.protocol", "ssl") && set("ssl.ca.location", o_.ca_file)));
    if (!ok) {
      rd_kafka_conf_destroy(conf);
      return InvalidArgumentError(Where() + errstr);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::OnReport);
    rd_kafka_conf_set_log_cb(conf, &KafkaSink::OnLog);
    rd_kafka_conf_set_opaque(conf, this);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return UnavailableError(Where() + "cannot start a producer: " + errstr);
    }
    topic_ = rd_kafka_topic_new(rk_, o_.topic.c_str(), nullptr);
    if (topic_ == nullptr) {
      Close();
      return UnavailableError(Where() + "topic " + o_.topic + ": " +
                              rd_kafka_err2str(rd_kafka_last_error()));
    }
    return Status::Ok();
  }

  void Close() {
    if (rk_ == nullptr) return;
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    if (topic_ != nullptr) rd_kafka_topic_destroy(topic_);
    rd_kafka_destroy(rk_);
    topic_ = nullptr;
    rk_ = nullptr;
  }

  const OutputOptions o_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* topic_ = nullptr;
  uint64_t batch_ = 0;
  std::vector<ItemResult>* results_ = nullptr;  // the batch in flight; output thread only
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewKafkaSink(const OutputOptions& o) {
  return std::unique_ptr<Sink>(new KafkaSink(o));
}

}  // namespace gapless::output
