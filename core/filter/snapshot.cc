#include "core/filter/snapshot.h"

#include "core/filter/config_context.h"
#include "core/filter/stream_stats.h"

#include <cstddef>

#include <fmt/format.h>

namespace sluice::filter {

FilterInstance::~FilterInstance() {
  if (desc != nullptr && config != nullptr && desc->sluice_on_config_destroy != nullptr) {
    desc->sluice_on_config_destroy(config);
  }
}

const ListenerRuntime* Snapshot::findListener(const std::string& name) const {
  for (const auto& l : listeners) {
    if (l.config->name == name) {
      return &l;
    }
  }
  return nullptr;
}

namespace {
bool sameCluster(const config::ClusterConfig& a, const config::ClusterConfig& b) {
  if (a.endpoints.size() != b.endpoints.size() || a.lb_policy != b.lb_policy ||
      a.connect_timeout_ms != b.connect_timeout_ms || a.dns_refresh_ms != b.dns_refresh_ms ||
      a.pool.max_idle_per_worker != b.pool.max_idle_per_worker ||
      a.pool.idle_timeout_ms != b.pool.idle_timeout_ms ||
      a.pool.max_connections != b.pool.max_connections ||
      a.circuit_breaker.max_pending != b.circuit_breaker.max_pending ||
      a.circuit_breaker.max_requests != b.circuit_breaker.max_requests ||
      a.circuit_breaker.retry_budget_percent != b.circuit_breaker.retry_budget_percent ||
      a.circuit_breaker.min_retry_concurrency != b.circuit_breaker.min_retry_concurrency ||
      a.hash_on.has_value() != b.hash_on.has_value() ||
      (a.hash_on &&
       (a.hash_on->header != b.hash_on->header || a.hash_on->client_ip != b.hash_on->client_ip)) ||
      a.health_check.has_value() != b.health_check.has_value() ||
      a.tls.has_value() != b.tls.has_value() ||
      (a.tls && (a.tls->sni != b.tls->sni || a.tls->ca_file != b.tls->ca_file ||
                 a.tls->verify != b.tls->verify)) ||
      a.outlier_detection.has_value() != b.outlier_detection.has_value() ||
      (a.outlier_detection &&
       (a.outlier_detection->consecutive_5xx != b.outlier_detection->consecutive_5xx ||
        a.outlier_detection->base_ejection_ms != b.outlier_detection->base_ejection_ms ||
        a.outlier_detection->max_ejection_percent != b.outlier_detection->max_ejection_percent))) {
    return false;
  }
  if (a.health_check) {
    const auto& x = *a.health_check;
    const auto& y = *b.health_check;
    if (x.path != y.path || x.interval_ms != y.interval_ms || x.timeout_ms != y.timeout_ms ||
        x.healthy_threshold != y.healthy_threshold ||
        x.unhealthy_threshold != y.unhealthy_threshold ||
        x.expected_statuses != y.expected_statuses) {
      return false;
    }
  }
  for (size_t i = 0; i < a.endpoints.size(); i++) {
    if (a.endpoints[i].address.text != b.endpoints[i].address.text ||
        a.endpoints[i].weight != b.endpoints[i].weight) {
      return false;
    }
  }
  return true;
}
} // namespace

BuildResult buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t generation,
                          const Snapshot* previous, BuildMode mode) {
  BuildResult result;
  auto snap = std::make_shared<Snapshot>();
  snap->config = config;
  snap->generation = generation;
  Registry& registry = Registry::global();
  for (const auto& l : config->listeners) {
    ListenerRuntime lr;
    lr.config = &l;
    if (l.tls) {
      lr.tls = tls::ServerContext::create(*l.tls, l.pointer + "/tls", result.errors);
    }
    for (const auto& f : l.filters) {
      const FilterType* type = nullptr;
      std::shared_ptr<const FilterType> module_type;
      if (!f.module.empty()) {
        std::string err;
        module_type = registry.loadModuleType(f.module, f.type, err);
        type = module_type.get();
        if (type == nullptr) {
          result.errors.push_back({f.pointer + "/module", err});
          continue;
        }
      } else {
        type = registry.findBuiltin(f.type);
        if (type == nullptr) {
          std::string known;
          for (const FilterType* t : registry.builtins()) {
            known += (known.empty() ? "" : ", ") + t->type;
          }
          result.errors.push_back({f.pointer + "/type", "unknown filter type \"" + f.type +
                                                            "\" (this build has: " + known +
                                                            "; a module needs \"module\")"});
          continue;
        }
      }
      ConfigContext ctx;
      ctx.config = config.get();
      ctx.pointer = f.pointer + "/config";
      ctx.name = f.name;
      const sluice_filter_descriptor_t* d = type->descriptor;
      void* cfg = d->sluice_on_config_new(hostTable(), reinterpret_cast<sluice_config_ctx_t*>(&ctx),
                                          sluice_str_t{f.config_json.data(), f.config_json.size()});
      if (cfg == nullptr || !ctx.errors.empty()) {
        if (ctx.errors.empty()) {
          ctx.errors.push_back({ctx.pointer, "filter \"" + f.type + "\" rejected its config"});
        }
        for (auto& e : ctx.errors) {
          result.errors.push_back(std::move(e));
        }
        if (cfg != nullptr && d->sluice_on_config_destroy != nullptr) {
          d->sluice_on_config_destroy(cfg);
        }
        continue;
      }
      auto inst = std::make_shared<FilterInstance>();
      inst->desc = d;
      inst->config = cfg;
      inst->name = f.name;
      inst->type = f.type;
      inst->module = type->module;
      inst->has_request_body = d->sluice_on_request_body != nullptr;
      inst->has_response_headers = d->sluice_on_response_headers != nullptr;
      inst->has_response_body = d->sluice_on_response_body != nullptr;
      inst->pointer = f.pointer;
      lr.any_request_body_hook |= inst->has_request_body;
      lr.any_response_body_hook |= inst->has_response_body;
      lr.filters.push_back(std::move(inst));
    }
    snap->listeners.push_back(std::move(lr));
  }
  if (!result.errors.empty()) {
    return result;
  }
  for (const auto& c : config->clusters) {
    upstream::ClusterInfoPtr reuse;
    const upstream::ClusterInfo* changed = nullptr;
    if (previous != nullptr) {
      for (const auto& old : previous->clusters) {
        if (old->name() == c.name) {
          if (sameCluster(old->config(), c)) {
            reuse = old;
          } else {
            changed = old.get();
          }
        }
      }
    }
    if (reuse) {
      snap->clusters.push_back(reuse);
      continue;
    }
    auto info = std::make_shared<upstream::ClusterInfo>(c);
    if (c.tls) {
      info->setTls(tls::ClientContext::create(*c.tls, c.pointer + "/tls", result.errors));
    }
    if (changed != nullptr) {
      // A changed cluster: endpoints that stay keep what is known about them (health, drain,
      // ejection, resolved address). Endpoints that left drain with the old pools, which finish
      // their in-flight requests and close.
      info->inheritEndpointState(*changed);
    }
    snap->clusters.push_back(std::move(info));
  }
  if (!result.errors.empty()) {
    return result;
  }
  if (mode == BuildMode::CheckOnly) {
    return result; // `sluice validate`: every filter config is destroyed without starting
  }
  // Every check passed: start what has side effects (files, threads). A filter that cannot
  // start fails the load; the snapshot is dropped and every config of it destroyed.
  for (auto& lr : snap->listeners) {
    for (auto& inst : lr.filters) {
      const sluice_filter_descriptor_t* d = inst->desc;
      if (d->size < offsetof(sluice_filter_descriptor_t, sluice_on_config_start) +
                        sizeof(d->sluice_on_config_start) ||
          d->sluice_on_config_start == nullptr) {
        continue;
      }
      if (!d->sluice_on_config_start(inst->config)) {
        result.errors.push_back({inst->pointer + "/config",
                                 fmt::format("filter \"{}\" ({}) could not start (its log line "
                                             "above says why)",
                                             inst->name, inst->type)});
        return result;
      }
    }
  }
  stats::defineSnapshotMetrics(*snap);
  result.snapshot = std::move(snap);
  return result;
}

} // namespace sluice::filter
