#include "report/outputs_report.h"

#include "base/json_text.h"

namespace gapless::report {

std::string OutputsJson(const std::vector<output::OutputReport>& report, bool* behind) {
  *behind = false;
  std::string json = "{\"outputs\":[";
  for (size_t i = 0; i < report.size(); ++i) {
    const output::OutputReport& o = report[i];
    json += std::string(i ? "," : "") + "{\"name\":" + JsonString(o.name) +
            ",\"type\":" + JsonString(o.type) +
            ",\"confirmed\":" + (o.confirmed ? "true" : "false") + ",\"streams\":[";
    for (size_t k = 0; k < o.streams.size(); ++k) {
      const output::ReportRow& r = o.streams[k];
      const uint64_t waiting = r.signed_size > r.delivered ? r.signed_size - r.delivered : 0;
      if (r.selected && (waiting > 0 || r.rejected > 0 || !r.problem.empty())) *behind = true;
      json += std::string(k ? "," : "") + "{\"agent\":" + JsonString(r.agent) +
              ",\"epoch\":" + JsonString(r.epoch) + ",\"signed\":" + std::to_string(r.signed_size) +
              ",\"confirmed\":" + std::to_string(r.delivered) +
              ",\"waiting\":" + std::to_string(waiting) +
              ",\"refused\":" + std::to_string(r.rejected) +
              ",\"has_cursor\":" + (r.has_cursor ? "true" : "false") +
              ",\"selected\":" + (r.selected ? "true" : "false") +
              (r.problem.empty() ? "" : ",\"problem\":" + JsonString(r.problem)) + "}";
    }
    json += "]}";
  }
  return json + "]}";
}

}  // namespace gapless::report
