// HTTP(S) JSON ingest on Boost.Beast. docs/formats/http.md is the contract.
//
// One request at a time per connection (HTTP/1.1 keep-alive, no pipelining of answers):
// read the request (body capped at max_body_bytes), parse it into events (src/json),
// append them, and answer 200 only once the group commit covering the last one returned.
// A spool that is full at the first event gets 503 + Retry-After and nothing of the
// request is stored; full later in the request, the rest waits for room (the answer is
// just later), so a 503 always means "nothing stored" and a 200 "everything durable".
#include <sys/stat.h>
#include <atomic>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "base/json_text.h"
#include "base/log.h"
#include "input/input.h"
#include "input/stream_listener.h"
#include "input/syslog_sink.h"
#include "json/json_events.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Shared {
  Context ctx;
  HttpOptions options;
  std::string source;
  std::string token;  // empty: no authentication
  Counters counters;
  // Request bodies being read or held, over every connection: at most
  // kInflightBodies × max_body_bytes at once.
  std::atomic<uint64_t> inflight_body_bytes{0};
};

constexpr uint64_t kInflightBodies = 16;

// Boost 1.74's Beast has its own string_view.
std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

// Constant-time comparison, so a wrong token's timing says nothing about the right one.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

std::optional<json::BodyFormat> FormatOf(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (type == "application/x-ndjson" || type == "application/ndjson" ||
      type == "application/jsonl" || type == "application/x-jsonlines") {
    return json::BodyFormat::kNdjson;
  }
  if (type == "application/json") return json::BodyFormat::kJson;
  return std::nullopt;
}

template <class Stream>
class HttpConnection : public ConnectionBase,
                       public std::enable_shared_from_this<HttpConnection<Stream>> {
 public:
  HttpConnection(std::shared_ptr<Shared> shared, Stream stream, std::string peer)
      : shared_(std::move(shared)), stream_(std::move(stream)), peer_(std::move(peer)) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(Timeout());
      auto self = this->shared_from_this();
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self](const boost::system::error_code& ec) {
                                if (ec) {
                                  LogWarning(self->shared_->source + ": TLS handshake with " +
                                             self->peer_ + " failed: " + ec.message());
                                  self->Close();
                                  return;
                                }
                                self->ReadRequest();
                              });
    } else {
      ReadRequest();
    }
  }

  void Shutdown() override {
    if (closed_) return;
    if (next_ < events_.size()) {
      const size_t count = events_.size() - next_;
      uint64_t bytes = 0;
      for (size_t i = next_; i < events_.size(); ++i) bytes += events_[i].raw.size();
      RecordUnstoredAtStop(shared_->ctx.ingest, shared_->source, count, bytes, observed_, observed_,
                           &shared_->counters);
      events_.clear();
    }
    Close();
  }

 private:
  std::chrono::milliseconds Timeout() const {
    return std::chrono::milliseconds(shared_->options.idle_timeout_ms);
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(Timeout());
    ReleaseBody();  // the last request's body is no longer needed
    auto self = this->shared_from_this();
    // The headers first: who may send, and to where, is known before any body is read.
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self](const boost::system::error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return OnRead(ec);
    const auto& h = parser_->get();
    const HttpOptions& o = shared_->options;
    // Refused at the headers: the body is never read, so the connection closes after.
    if (Sv(h.target()) != o.path) {
      return Reply(http::status::not_found, "POST events to " + o.path, true);
    }
    if (h.method() != http::verb::post) {
      return Reply(http::status::method_not_allowed, "only POST is accepted here", true);
    }
    if (!shared_->token.empty()) {
      const std::string_view auth = Sv(h[http::field::authorization]);
      if (!auth.starts_with("Bearer ") || !SameSecret(auth.substr(7), shared_->token)) {
        LogWarning(shared_->source + ": refused a request from " + peer_ +
                   ": missing or wrong bearer token");
        return Reply(http::status::unauthorized, "a valid Authorization: Bearer token is required",
                     true);
      }
    }
    const uint64_t want = parser_->content_length().value_or(o.max_body_bytes);
    const uint64_t held = shared_->inflight_body_bytes.fetch_add(want) + want;
    reserved_ = want;
    if (held > kInflightBodies * o.max_body_bytes && want <= o.max_body_bytes) {
      ReleaseBody();
      return Reply(http::status::service_unavailable,
                   "too many request bodies in flight at this agent; retry later", true,
                   /*retry_after=*/true);
    }
    auto self = this->shared_from_this();
    http::async_read(stream_, buffer_, *parser_,
                     [self](const boost::system::error_code& e, size_t) { self->OnRead(e); });
  }

  void ReleaseBody() {
    shared_->inflight_body_bytes.fetch_sub(reserved_);
    reserved_ = 0;
  }

  void OnRead(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      return Reply(http::status::payload_too_large,
                   "the body is larger than max_body_size (" +
                       std::to_string(shared_->options.max_body_bytes) +
                       " bytes); send smaller batches",
                   /*close=*/true);
    }
    if (ec == http::error::header_limit) {
      return Reply(http::status::request_header_fields_too_large, "headers larger than 16 KiB",
                   true);
    }
    if (ec) return Reply(http::status::bad_request, "malformed HTTP: " + ec.message(), true);
    req_ = parser_->release();
    Handle();
  }

  void Handle() {  // path, method and token were checked at the headers (OnHeader)
    const HttpOptions& o = shared_->options;
    const std::string_view encoding = Sv(req_[http::field::content_encoding]);
    if (!encoding.empty() && encoding != "identity") {
      return Reply(http::status::unsupported_media_type,
                   "Content-Encoding is not supported; send the body uncompressed", false);
    }
    const std::optional<json::BodyFormat> format = FormatOf(Sv(req_[http::field::content_type]));
    if (!format) {
      return Reply(http::status::unsupported_media_type,
                   "Content-Type must be application/x-ndjson (one JSON value per line) or "
                   "application/json (an array of values, or one value)",
                   false);
    }
    observed_ = shared_->ctx.clock->NowNanos();
    events_.clear();
    storage_.Clear();
    StatusOr<json::BodyResult> r =
        json::ParseBody(req_.body(), *format, o.max_message_bytes, observed_, &events_, &storage_);
    if (!r.ok()) return Reply(http::status::bad_request, r.status().message(), false);
    result_ = *r;
    for (event::Event& e : events_) {
      e.source = shared_->source;
      e.peer = peer_;
    }
    next_ = 0;
    Append();
  }

  // Appends events_[next_..]; answers once all are durable.
  void Append() {
    while (next_ < events_.size()) {
      const event::Event& e = events_[next_];
      StatusOr<spool::AppendResult> r = shared_->ctx.ingest->Append(e);
      if (!r.ok()) return Refused(r.status());
      if (!r->dropped) seq_end_ = r->seq + 1;
      Count(e);
      ++next_;
    }
    auto self = this->shared_from_this();
    asio::io_context* io = shared_->ctx.io;
    shared_->ctx.ingest->OnDurable(seq_end_, [self, io](const Status& s) {
      asio::post(*io, [self, s] { self->OnDurable(s); });
    });
  }

  void Refused(const Status& s) {
    const bool full = s.code() == StatusCode::kResourceExhausted;
    if (next_ == 0) {
      // Nothing of this request is stored: the client may resend it as it is.
      if (!full) LogError(shared_->source + ": cannot store events: " + s.ToString());
      events_.clear();
      return Reply(http::status::service_unavailable,
                   full ? "the agent cannot store events now (" + s.message() + "); retry later"
                        : "the agent cannot store events now (" + s.message() + "); retry later",
                   false, /*retry_after=*/true);
    }
    if (!full) {
      LogError(shared_->source + ": stored " + std::to_string(next_) + " of " +
               std::to_string(events_.size()) + " events of a request, then: " + s.ToString());
      const size_t stored = next_;
      next_ = events_.size();  // nothing more will be stored from this request
      return Reply(http::status::service_unavailable,
                   "stored " + std::to_string(stored) + " of " + std::to_string(events_.size()) +
                       " events, then the spool failed (" + s.message() +
                       "); resending the request may duplicate those stored",
                   true, true);
    }
    // Full in the middle: the rest waits for room, and the answer waits with it.
    shared_->counters.paused.fetch_add(1, std::memory_order_relaxed);
    auto self = this->shared_from_this();
    asio::io_context* io = shared_->ctx.io;
    shared_->ctx.ingest->OnRoom(events_[next_].raw.size() + 4096, [self, io] {
      asio::post(*io, [self] {
        if (!self->closed_) self->Append();
      });
    });
  }

  void Count(const event::Event& e) {
    shared_->counters.messages.fetch_add(1, std::memory_order_relaxed);
    shared_->counters.bytes.fetch_add(e.raw.size(), std::memory_order_relaxed);
    if (e.has(event::kParseError)) shared_->counters.parse_errors.fetch_add(1);
    if (e.has(event::kTruncated)) shared_->counters.truncated.fetch_add(1);
  }

  void OnDurable(const Status& s) {
    if (closed_) return;
    if (!s.ok()) {
      LogError(shared_->source + ": events from " + peer_ + " are not durable: " + s.ToString());
      return Reply(http::status::service_unavailable,
                   "the events could not be made durable (" + s.message() + "); retry later", true,
                   true);
    }
    shared_->counters.acked.fetch_add(events_.size(), std::memory_order_relaxed);
    std::string body = "{\"stored\":" + std::to_string(events_.size()) +
                       ",\"parse_errors\":" + std::to_string(result_.parse_errors) +
                       ",\"truncated\":" + std::to_string(result_.truncated);
    if (!result_.first_error.empty()) body += ",\"first_error\":" + JsonString(result_.first_error);
    body += "}\n";
    events_.clear();
    Send(http::status::ok, std::move(body), false, false);
  }

  void Reply(http::status status, const std::string& error, bool close, bool retry_after = false) {
    Send(status, "{\"error\":" + JsonString(error) + "}\n", close, retry_after);
  }

  void Send(http::status status, std::string body, bool close, bool retry_after) {
    res_ = {};
    res_.version(req_.version() == 0 ? 11 : req_.version());
    res_.result(status);
    res_.set(http::field::server, "gapless");
    res_.set(http::field::content_type, "application/json");
    if (status == http::status::method_not_allowed) res_.set(http::field::allow, "POST");
    if (status == http::status::unauthorized) res_.set(http::field::www_authenticate, "Bearer");
    if (retry_after) res_.set(http::field::retry_after, "1");
    res_.keep_alive(!close && req_.keep_alive());
    res_.body() = std::move(body);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(Timeout());
    auto self = this->shared_from_this();
    http::async_write(stream_, res_, [self](const boost::system::error_code& ec, size_t) {
      if (self->closed_) return;
      if (ec || !self->res_.keep_alive()) return self->Close();
      self->req_ = {};
      self->ReadRequest();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    ReleaseBody();
    beast::get_lowest_layer(stream_).close();
  }

  std::shared_ptr<Shared> shared_;
  Stream stream_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t reserved_ = 0;                 // this connection's share of inflight_body_bytes
  http::request<http::string_body> req_;  // events_ point into its body
  http::response<http::string_body> res_;
  std::vector<event::Event> events_;
  syslog::FieldStorage storage_;
  json::BodyResult result_;
  size_t next_ = 0;  // events_[0, next_) are appended
  uint64_t seq_end_ = 0;
  int64_t observed_ = 0;
  bool closed_ = false;
};

Status LoadToken(const std::string& path, std::string* token) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidArgumentError("token_file " + path + " cannot be read: " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return InvalidArgumentError("token_file " + path +
                                " is readable by group or others; run chmod 600 on it");
  }
  ASSIGN_OR_RETURN(*token, env::ReadFileToString(env::Env::Posix(), path));
  while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) token->pop_back();
  if (token->size() < 16) {
    return InvalidArgumentError("token_file " + path + " holds fewer than 16 characters");
  }
  return Status::Ok();
}

class HttpInput final : public Input {
 public:
  HttpInput(const Context& ctx, const HttpOptions& options)
      : shared_(std::make_shared<Shared>()), listener_(ctx.io) {
    shared_->ctx = ctx;
    shared_->options = options;
  }

  const std::string& name() const override { return shared_->source; }
  uint16_t port() const override { return listener_.port(); }
  Stats stats() const override { return shared_->counters.Snapshot(); }

  Status Start() override {
    if (!shared_->options.token_file.empty()) {
      RETURN_IF_ERROR(LoadToken(shared_->options.token_file, &shared_->token));
    }
    RETURN_IF_ERROR(listener_.Bind("HTTP", shared_->options.listen, shared_->options.tls));
    shared_->source = shared_->options.name.empty() ? "http:" + std::to_string(listener_.port())
                                                    : shared_->options.name;
    listener_.Accept(shared_->source, shared_->options.max_connections,
                     &shared_->counters.connections,
                     [shared = shared_](tcp::socket socket, asio::ssl::context* tls,
                                        std::string peer) -> std::shared_ptr<ConnectionBase> {
                       beast::tcp_stream stream(std::move(socket));
                       if (tls != nullptr) {
                         using Tls = beast::ssl_stream<beast::tcp_stream>;
                         auto c = std::make_shared<HttpConnection<Tls>>(
                             shared, Tls(std::move(stream), *tls), std::move(peer));
                         c->Start();
                         return c;
                       }
                       auto c = std::make_shared<HttpConnection<beast::tcp_stream>>(
                           shared, std::move(stream), std::move(peer));
                       c->Start();
                       return c;
                     });
    return Status::Ok();
  }

  void Stop() override { listener_.Stop(); }

 private:
  std::shared_ptr<Shared> shared_;
  StreamListener listener_;
};

}  // namespace

std::unique_ptr<Input> NewHttpInput(const Context& ctx, const HttpOptions& options) {
  return std::make_unique<HttpInput>(ctx, options);
}

}  // namespace gapless::input
