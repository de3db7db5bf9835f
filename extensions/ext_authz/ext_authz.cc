// ext_authz: asks an authorization service (a cluster) about every request before it goes on.
// The request pauses (STOP) while the HTTP call is in flight; a 2xx answer resumes it (with
// headers copied from the answer), any other answer is returned to the client, and a failed
// call (timeout, connect failure, ...) answers `failure_status` or lets the request through
// with `failure_mode_allow`. Written with the C++ SDK; see README.md.

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/filter.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::extensions::ext_authz {

class AuthzFilter;

class AuthzConfig {
public:
  static constexpr size_t kMaxHeaders = 16;

  static std::unique_ptr<AuthzConfig> create(sdk::ConfigContext& ctx) {
    auto c = std::make_unique<AuthzConfig>();
    sdk::ConfigReader r(ctx);
    sdk::json::Value root;
    if (!r.parse(root)) {
      return nullptr;
    }
    // Unknown keys are errors; reading goes on to report every mistake at once.
    r.object(root, "",
             {"cluster", "path_prefix", "timeout_ms", "headers_to_authz", "headers_from_authz",
              "failure_mode_allow", "failure_status"});
    if (r.str(root, "", "cluster", c->cluster_, true, true) && !ctx.clusterExists(c->cluster_)) {
      r.error("/cluster", "no cluster named \"" + c->cluster_ + "\"");
    }
    if (r.str(root, "", "path_prefix", c->path_prefix_) && !c->path_prefix_.empty() &&
        c->path_prefix_[0] != '/') {
      r.error("/path_prefix", "must start with '/'");
    }
    uint64_t timeout = 200;
    r.uint(root, "", "timeout_ms", timeout, 1, 60000);
    c->timeout_ms_ = static_cast<uint32_t>(timeout);
    headerList(r, root, "headers_to_authz", c->headers_to_authz_);
    headerList(r, root, "headers_from_authz", c->headers_from_authz_);
    r.boolean(root, "", "failure_mode_allow", c->failure_mode_allow_);
    uint64_t status = 403;
    r.uint(root, "", "failure_status", status, 400, 599);
    c->failure_status_ = static_cast<uint32_t>(status);
    std::string name(ctx.name());
    const char* help = "Requests checked by ext_authz, by result";
    c->allowed_ = ctx.counter("sluice_ext_authz_requests_total", help,
                              {{"filter", name}, {"result", "allowed"}});
    c->denied_ = ctx.counter("sluice_ext_authz_requests_total", help,
                             {{"filter", name}, {"result", "denied"}});
    c->failed_ = ctx.counter("sluice_ext_authz_requests_total", help,
                             {{"filter", name}, {"result", "error"}});
    return r.ok() ? std::move(c) : nullptr;
  }

  std::unique_ptr<AuthzFilter> newFilter(sdk::Stream stream) const;

  const std::string& cluster() const { return cluster_; }
  const std::string& pathPrefix() const { return path_prefix_; }
  uint32_t timeoutMs() const { return timeout_ms_; }
  const std::vector<std::string>& headersToAuthz() const { return headers_to_authz_; }
  const std::vector<std::string>& headersFromAuthz() const { return headers_from_authz_; }
  bool failureModeAllow() const { return failure_mode_allow_; }
  uint32_t failureStatus() const { return failure_status_; }
  const sdk::Metric& allowed() const { return allowed_; }
  const sdk::Metric& denied() const { return denied_; }
  const sdk::Metric& failed() const { return failed_; }

private:
  static void headerList(sdk::ConfigReader& r, const sdk::json::Value& root, const char* key,
                         std::vector<std::string>& out) {
    if (!r.strings(root, "", key, out)) {
      return;
    }
    if (out.size() > kMaxHeaders) {
      r.error(std::string("/") + key, "at most " + std::to_string(kMaxHeaders) + " headers");
    }
    for (size_t i = 0; i < out.size(); i++) {
      if (!sdk::ConfigReader::isToken(out[i])) {
        r.error(std::string("/") + key + "/" + std::to_string(i),
                "expected a header name, got \"" + out[i] + "\"");
      }
    }
  }

  std::string cluster_;
  std::string path_prefix_;
  uint32_t timeout_ms_ = 200;
  std::vector<std::string> headers_to_authz_ = {"authorization"};
  std::vector<std::string> headers_from_authz_;
  bool failure_mode_allow_ = false;
  uint32_t failure_status_ = 403;
  sdk::Metric allowed_;
  sdk::Metric denied_;
  sdk::Metric failed_;
};

class AuthzFilter : public sdk::Filter {
public:
  AuthzFilter(const AuthzConfig& config, sdk::Stream stream) : Filter(stream), config_(config) {}

  sluice_status_t onRequestHeaders(bool) override {
    std::array<sluice_header_t, AuthzConfig::kMaxHeaders> headers;
    size_t n = 0;
    for (const std::string& name : config_.headersToAuthz()) {
      if (auto v = stream().requestHeader(name)) {
        headers[n++] = sdk::header(name, *v);
      }
    }
    // Per-worker scratch: no allocation per request once it has grown.
    thread_local std::string path;
    path.assign(config_.pathPrefix());
    path.append(stream().path());
    sluice_call_id_t call = httpCall<&AuthzFilter::onAuthzResponse>(
        config_.cluster(), stream().method(), path, std::span(headers.data(), n), {},
        config_.timeoutMs());
    // The call is bound to the stream: the host cancels it if the client leaves first.
    if (call == 0) {
      return failure("the authorization call could not start");
    }
    return sdk::kStop; // resumed or answered in onAuthzResponse
  }

private:
  void onAuthzResponse(const sdk::HttpResponse& r) {
    if (!r.ok() || r.status() < 200) {
      std::string why = "authorization call failed: ";
      why += r.ok() ? "interim status" : r.error();
      if (failure(why) == sdk::kContinue) {
        stream().resume(SLUICE_DIRECTION_REQUEST);
      }
      return;
    }
    if (r.status() < 300) {
      config_.allowed().add();
      for (const std::string& name : config_.headersFromAuthz()) {
        if (auto v = r.header(name)) {
          stream().setHeader(SLUICE_HEADERS_REQUEST, name, *v);
        }
      }
      stream().resume(SLUICE_DIRECTION_REQUEST);
      return;
    }
    // Denied: the service's status and body go to the client, with the headers that explain
    // the denial (challenge, redirect, body type).
    config_.denied().add();
    std::array<sluice_header_t, 3> out;
    size_t n = 0;
    for (std::string_view name : {"www-authenticate", "location", "content-type"}) {
      if (auto v = r.header(name)) {
        out[n++] = sdk::header(name, *v);
      }
    }
    stream().sendLocalReply(r.status(), r.body(), std::span(out.data(), n), "ext_authz denied");
  }

  // The call failed: let the request through or answer failure_status.
  sluice_status_t failure(std::string_view why) {
    config_.failed().add();
    stream().log(SLUICE_LOG_WARN, why);
    if (config_.failureModeAllow()) {
      return sdk::kContinue;
    }
    stream().sendLocalReply(config_.failureStatus(), "authorization unavailable\n", {},
                            "ext_authz error");
    return sdk::kStop;
  }

  const AuthzConfig& config_;
};

inline std::unique_ptr<AuthzFilter> AuthzConfig::newFilter(sdk::Stream stream) const {
  return std::make_unique<AuthzFilter>(*this, stream);
}

} // namespace sluice::extensions::ext_authz

SLUICE_SDK_MODULE("ext_authz",
                  sluice::sdk::filterType<sluice::extensions::ext_authz::AuthzConfig>("ext_authz"))
