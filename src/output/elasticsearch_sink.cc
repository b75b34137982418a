// The elasticsearch output: the `_bulk` API of Elasticsearch and OpenSearch. Each batch is
// one POST of `create` actions whose `_id` is the record's idempotency key, so a resend
// never makes a second document: the answer to it is 409 (version conflict), which counts
// as delivered. The answer's items are read one by one, in order:
//   2xx, 409            delivered
//   429, 5xx            sent again (only that item)
//   any other status    refused for good: the type and reason ES gave go to the
//                       .rejected account (a mapping error, a document too large, ...)
// An HTTP answer other than 200 (503 storms, 429, 401/403), no answer, an answer cut off
// or one whose items do not match the request: nothing confirmed, all sent again.
#include <simdjson.h>

#include "base/json_text.h"
#include "http/client.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

class ElasticsearchSink final : public Sink {
 public:
  ElasticsearchSink(const OutputOptions& o, std::string api_key)
      : o_(o), api_key_(std::move(api_key)) {
    url_ = o.url;
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    url_ += "/_bulk";
  }

  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    http::Request req;
    req.method = "POST";
    req.url = url_;
    req.content_type = "application/x-ndjson";
    if (!api_key_.empty()) req.headers.emplace_back("Authorization", "ApiKey " + api_key_);
    const std::string index = JsonString(o_.index);
    for (const Item* item : items) {
      req.body += "{\"create\":{\"_index\":" + index + ",\"_id\":" + JsonString(item->id) + "}}\n";
      req.body += item->body;
      req.body += '\n';
    }
    http::ClientOptions co;
    co.timeout_ms = o_.timeout_ms;
    co.ca_file = o_.ca_file;
    co.max_body = 64u << 20;
    auto resp = http::Send(req, co);
    const std::string where = "elasticsearch output " + o_.name + ": ";
    if (!resp.ok()) return UnavailableError(where + resp.status().message());
    if (resp->status == 401 || resp->status == 403) {
      return UnavailableError(where + "HTTP " + std::to_string(resp->status) +
                              ": the credentials (api_key_file) were refused");
    }
    if (resp->status == 413) {
      return UnavailableError(where + "HTTP 413: the request is too large; lower batch_records");
    }
    if (resp->status != 200) {
      return UnavailableError(where + "HTTP " + std::to_string(resp->status) + ": " +
                              resp->body.substr(0, 200));
    }
    return ReadItems(resp->body, items.size(), results, where);
  }

 private:
  Status ReadItems(const std::string& body, size_t expected, std::vector<ItemResult>* results,
                   const std::string& where) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
      return UnavailableError(where + "the _bulk answer is not JSON");
    }
    simdjson::dom::array list;
    if (doc["items"].get(list) != simdjson::SUCCESS || list.size() != expected) {
      return UnavailableError(where + "the _bulk answer does not have one item per action");
    }
    results->clear();
    for (simdjson::dom::element entry : list) {
      simdjson::dom::object action;
      if (entry.get(action) != simdjson::SUCCESS || action.size() != 1) {
        return UnavailableError(where + "a _bulk item is not {\"<action>\": {...}}");
      }
      simdjson::dom::element item = (*action.begin()).value;
      int64_t status = 0;
      if (item["status"].get(status) != simdjson::SUCCESS) {
        return UnavailableError(where + "a _bulk item has no status");
      }
      std::string reason = "HTTP " + std::to_string(status);
      std::string_view type, text;
      if (item["error"]["type"].get(type) == simdjson::SUCCESS) reason += " " + std::string(type);
      if (item["error"]["reason"].get(text) == simdjson::SUCCESS) {
        reason += ": " + std::string(text.substr(0, 500));
      }
      if ((status >= 200 && status < 300) || status == 409) {
        results->push_back({ItemResult::State::kDelivered, ""});
      } else if (status == 429 || status >= 500) {
        results->push_back({ItemResult::State::kRetry, reason});
      } else {
        results->push_back({ItemResult::State::kRejected, reason});
      }
    }
    return Status::Ok();
  }

  const OutputOptions o_;
  const std::string api_key_;
  std::string url_;
};

}  // namespace

StatusOr<std::unique_ptr<Sink>> NewElasticsearchSink(const OutputOptions& o) {
  std::string key;
  if (!o.api_key_file.empty()) {
    ASSIGN_OR_RETURN(key, ReadSecretFile(o.name, "api_key_file", o.api_key_file));
  }
  return std::unique_ptr<Sink>(new ElasticsearchSink(o, std::move(key)));
}

}  // namespace gapless::output
