// The [alerts] table, the same in the agent's and the collector's configuration
// (docs/config.md): journal, alertmanager = [...], watchdog, [[alerts.webhook]].
// Include only from the .cc files of configuration parsers: it brings in toml++.
#pragma once

#include <initializer_list>
#include <string_view>

#include "alert/alert.h"
#include "config/toml_checker.h"

namespace gapless::config {

// Parses root's [alerts] into *a (absent: *a is untouched) and returns the table, or null.
// `extra_keys`: the keys the caller reads from the table itself. watchdog = true sets
// a->watchdog to `watchdog_subject`; `watchdog_default` applies when the key is absent.
const toml::table* ParseAlerts(Checker& c, const toml::table& root, alert::AlertOptions* a,
                               std::initializer_list<std::string_view> extra_keys,
                               bool watchdog_default, const std::string& watchdog_subject);

}  // namespace gapless::config
