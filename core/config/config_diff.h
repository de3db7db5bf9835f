#pragma once

// What a reload changes: listeners, clusters and routes (the virtual hosts of router filters)
// added, removed or changed between two configs. Computed from the documents as loaded, so any
// edit inside an entry counts as a change of that entry.

#include "core/config/config.h"

#include <string>
#include <vector>

namespace sluice::config {

struct ChangeSet {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> changed;
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

struct ConfigDiff {
  ChangeSet listeners; // by listener name
  ChangeSet clusters;  // by cluster name
  // Router virtual hosts as "<listener>/<virtual host name>" ("<listener>/<filter name>/<vhost>"
  // for a router filter instance not named "router"; an unnamed virtual host is "#<index>").
  // A listener counts as changed only for edits outside its routers' virtual hosts.
  ChangeSet routes;
  // Process settings outside listeners and clusters whose value changed, as JSON pointers
  // ("/workers", "/admin/api_key", "/shutdown/drain_ms", ...). Compared on the loaded values, so
  // a secret read from a file that changed counts; values are never shown.
  std::vector<std::string> settings;
  // The subset of `settings` the reload could not apply: they take effect at the next start (the
  // server fills this in; see Server::reload).
  std::vector<std::string> restart_required;
  bool empty() const {
    return listeners.empty() && clusters.empty() && routes.empty() && settings.empty();
  }
  // {"listeners": {"added": [...], "removed": [...], "changed": [...]}, "clusters": {...},
  //  "routes": {...}, "settings": [...], "restart_required": [...]}
  std::string toJson() const;
  // One line for the log: "listeners +new -old ~web; clusters ~a; routes ~web/v;
  // settings ~/workers; restart required: /workers", or "no changes".
  std::string summary() const;
};

// `before` may be a default Config (empty raw_json): everything in `after` is then added (and no
// setting is listed).
ConfigDiff diffConfigs(const Config& before, const Config& after);

} // namespace sluice::config
