#include "config/alerts_config.h"

#include <vector>

namespace gapless::config {

const toml::table* ParseAlerts(Checker& c, const toml::table& root, alert::AlertOptions* a,
                               std::initializer_list<std::string_view> extra_keys,
                               bool watchdog_default, const std::string& watchdog_subject) {
  bool watchdog = watchdog_default;
  const toml::table* t = c.Table(root, "alerts");
  if (t != nullptr) {
    std::vector<std::string_view> keys = {"journal", "alertmanager", "watchdog", "webhook"};
    keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
    for (const auto& [key, node] : *t) {
      if (std::find(keys.begin(), keys.end(), key.str()) != keys.end()) continue;
      std::string list;
      for (std::string_view k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
      c.Error(key.source(),
              "unknown key \"" + std::string(key.str()) + "\" in [alerts]; known keys: " + list);
    }
    c.String(*t, "journal", &a->journal);
    c.Bool(*t, "watchdog", &watchdog);
    if (const toml::node* n = t->get("alertmanager")) {
      const toml::array* list = n->as_array();
      for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
        auto v = (*list)[i].value<std::string>();
        if (!v || (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)) {
          c.Error((*list)[i].source(), "an alertmanager is its base URL, e.g. \"http://am:9093\"");
        } else {
          a->alertmanagers.push_back(*v);
        }
      }
      if (list == nullptr) c.Error(n->source(), "alertmanager must be a list of base URLs");
    }
    for (const toml::table* table : c.Tables(*t, "webhook", "[[alerts.webhook]]")) {
      const toml::table& w = *table;
      alert::WebhookOptions o;
      c.OnlyKeys(w, {"url", "secret_file", "ca_file", "timeout_ms"}, "[[alerts.webhook]]");
      if (!c.String(w, "url", &o.url) ||
          (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0)) {
        c.Error(w.source(), "this [[alerts.webhook]] needs url = \"http(s)://...\"");
      }
      c.String(w, "secret_file", &o.secret_file);
      c.String(w, "ca_file", &o.ca_file);
      c.Int(w, "timeout_ms", 100, 600'000, &o.timeout_ms);
      a->webhooks.push_back(std::move(o));
    }
  }
  a->watchdog = watchdog ? watchdog_subject : "";
  return t;
}

}  // namespace gapless::config
