"""Admin API: readiness, liveness, metrics, redacted config dump, clusters, auth, drain."""
import json
import os
import re
import time

from harness import (Sluice, Upstream, case, header, http_request, promtool_check, run_cases, run_validate,
                     simple_config)

KEY = "s3cr3t-admin-key"


def admin_config(up, key=KEY, **kw):
    cfg = simple_config(up.address, **kw)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    if key is not None:
        cfg["admin"]["api_key"] = key
    return cfg


def admin(sl, method, path, key=KEY, body=None):
    headers = {"Authorization": "Bearer " + key} if key else {}
    return http_request(sl.admin_port, method, path, headers, body)


@case
def ready_and_healthz_are_open_everything_else_needs_the_key():
    up = Upstream()
    sl = Sluice(admin_config(up))
    assert sl.admin_port
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 200
    assert http_request(sl.admin_port, "GET", "/healthz")[0] == 200
    for path in ("/stats", "/stats/prometheus", "/metrics", "/config_dump", "/clusters"):
        status, hs, body = http_request(sl.admin_port, "GET", path)
        assert status == 401, (path, status)
        assert KEY.encode() not in body
        status, hs, body = admin(sl, "GET", path, key="wrong-key")
        assert status == 401, (path, status)
        status, hs, body = admin(sl, "GET", path)
        assert status == 200, (path, status, body)
    assert http_request(sl.admin_port, "GET", "/nope")[0] == 401
    assert admin(sl, "GET", "/nope")[0] == 404
    assert admin(sl, "DELETE", "/stats")[0] == 405
    sl.stop()


@case
def config_dump_redacts_secrets():
    up = Upstream()
    os.environ["SLUICE_TEST_ADMIN_KEY"] = KEY
    cfg = admin_config(up, key={"env": "SLUICE_TEST_ADMIN_KEY"})
    sl = Sluice(cfg)
    status, hs, body = admin(sl, "GET", "/config_dump")
    assert status == 200
    doc = json.loads(body)
    assert doc["admin"]["api_key"] == "[redacted]"
    assert KEY.encode() not in body and b"SLUICE_TEST_ADMIN_KEY" not in body
    assert doc["clusters"][0]["name"] == "up"
    sl.stop()


@case
def metrics_count_requests_and_pass_promtool():
    up = Upstream()
    sl = Sluice(admin_config(up, routes=[{"match": {"prefix": "/"}, "cluster": "up"}]))
    for i in range(5):
        http_request(sl.port(), "GET", "/m%d" % i)
    http_request(sl.port(), "GET", "/status/503")
    # A stream's metrics are recorded by its worker right after the response is flushed: poll
    # until the last request shows up rather than racing it.
    deadline = time.time() + 5
    while True:
        status, hs, body = admin(sl, "GET", "/stats/prometheus")
        text = body.decode()
        if 'code="5xx"} 1' in text or time.time() > deadline:
            break
        time.sleep(0.05)
    assert re.search(r'sluice_downstream_requests_total\{listener="web",code="2xx"\} 5', text), text
    assert re.search(r'sluice_downstream_requests_total\{listener="web",code="5xx"\} 1', text), text
    assert re.search(r'sluice_upstream_requests_total\{cluster="up",code="2xx"\} 5', text), text
    assert 'sluice_downstream_request_duration_seconds_bucket{listener="web",le="+Inf"} 6' in text, text
    assert "sluice_server_ready 1" in text and "sluice_config_generation 1" in text
    assert re.search(r'sluice_downstream_connections_active\{listener="web"\} \d', text)
    assert re.search(r'sluice_upstream_connections_active\{cluster="up"\} [1-9]', text), text
    doc = json.loads(admin(sl, "GET", "/stats")[2])
    names = {m["name"] for m in doc["metrics"]}
    assert "sluice_upstream_errors_total" in names
    promtool_check(body)
    sl.stop()


@case
def each_worker_counts_the_requests_it_serves():
    up = Upstream()
    sl = Sluice(admin_config(up, routes=[{"match": {"prefix": "/"}, "cluster": "up"}]), workers=2)
    text = admin(sl, "GET", "/stats/prometheus")[2].decode()
    # Every worker's series exists at 0 before any request.
    for w in ("0", "1"):
        assert 'sluice_worker_requests_total{worker="%s"} 0' % w in text, text
    n = 40  # a new connection each: the kernel spreads them over both workers (SO_REUSEPORT)
    for i in range(n):
        assert http_request(sl.port(), "GET", "/w%d" % i)[0] == 200
    per = {}
    deadline = time.time() + 5
    while True:
        text = admin(sl, "GET", "/stats/prometheus")[2].decode()
        per = {m.group(1): float(m.group(2)) for m in
               re.finditer(r'sluice_worker_requests_total\{worker="(\d+)"\} (\S+)', text)}
        if sum(per.values()) >= n or time.time() > deadline:
            break
        time.sleep(0.05)
    assert sorted(per) == ["0", "1"], per
    assert sum(per.values()) == n, per
    # 40 connections all hashed to one worker: odds of 2 in 2^40.
    assert min(per.values()) > 0, per
    promtool_check(text.encode())
    sl.stop()


@case
def every_spec_metric_family_is_exposed_with_the_built_in_filters():
    # SPEC section 5: every family, with the filters that own some of them in the chain.
    up = Upstream()
    secret = "c2x1aWNlLXRlc3Qtc2VjcmV0LWZvci1oczI1Ng"
    filters = [
        {"type": "ai_agent_tagger", "config": {}},
        {"type": "cors", "config": {"allow_origins": ["https://app.example.com"]}},
        {"type": "ratelimit", "config": {"rules": [{"match": {"prefix": "/x"}, "key": {"client_ip": True},
                                                    "requests_per_minute": 60, "burst": 2}]}},
        {"type": "jwt_authn", "config": {
            "providers": [{"name": "idp", "issuer": "https://idp.example.com/", "algorithms": ["HS256"],
                           "jwks": {"inline": {"keys": [{"kty": "oct", "k": secret, "alg": "HS256"}]}}}],
            "rules": [{"match": {"prefix": "/private"}, "requires": "idp"}]}},
    ]
    cfg = admin_config(up, filters_before=filters,
                       clusters=[{"name": "up", "endpoints": [{"address": up.address}],
                                  "health_check": {"path": "/healthz", "interval_ms": 1000}}])
    sl = Sluice(cfg)
    port = sl.port()
    for _ in range(3):
        http_request(port, "GET", "/x", {"user-agent": "Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)"})
    assert http_request(port, "GET", "/private")[0] == 401
    families = ["sluice_downstream_requests_total", "sluice_downstream_request_duration_seconds",
                "sluice_downstream_connections_active", "sluice_upstream_requests_total",
                "sluice_upstream_request_duration_seconds", "sluice_upstream_endpoint_healthy",
                "sluice_upstream_connections_active", "sluice_upstream_errors_total",
                "sluice_ratelimit_limited_total", "sluice_jwt_authn_denied_total",
                "sluice_ai_agent_requests_total", "sluice_config_generation",
                "sluice_config_reloads_total", "sluice_server_ready", "sluice_server_draining"]
    deadline = time.time() + 5
    while True:
        text = admin(sl, "GET", "/stats/prometheus")[2].decode()
        if 'sluice_ratelimit_limited_total{filter="ratelimit"} 1' in text or time.time() > deadline:
            break
        time.sleep(0.05)
    for f in families:
        assert re.search(r"^# TYPE %s " % f, text, re.M), (f, text[:3000])
    assert 'sluice_ratelimit_limited_total{filter="ratelimit"} 1' in text, text
    assert re.search(r'sluice_jwt_authn_denied_total\{filter="jwt_authn",reason="missing"\} 1', text), text
    assert re.search(r'sluice_ai_agent_requests_total\{[^}]*agent="GPTBot"[^}]*\} [1-9]', text), text
    promtool_check(text)
    sl.stop()


@case
def clusters_show_endpoints_and_drain_stops_new_requests():
    a, b = Upstream("a"), Upstream("b")
    cfg = admin_config(a, clusters=[{"name": "up", "endpoints": [{"address": a.address}, {"address": b.address}]}])
    sl = Sluice(cfg)
    doc = json.loads(admin(sl, "GET", "/clusters")[2])
    eps = doc["clusters"][0]["endpoints"]
    assert [e["address"] for e in eps] == [a.address, b.address]
    assert all(e["healthy"] and not e["draining"] for e in eps)
    for i in range(10):  # leave idle pooled connections to both endpoints
        http_request(sl.port(), "GET", "/warm")
    doc = json.loads(admin(sl, "GET", "/clusters")[2])
    assert doc["clusters"][0]["endpoints"][1]["active_connections"] >= 1, doc
    status, hs, body = admin(sl, "POST", "/clusters/up/endpoints/%s/drain" % b.address)
    assert status == 200, body
    # The drained endpoint's idle pooled connections are closed at once.
    deadline = time.time() + 5
    while json.loads(admin(sl, "GET", "/clusters")[2])["clusters"][0]["endpoints"][1]["active_connections"] and \
            time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(admin(sl, "GET", "/clusters")[2])["clusters"][0]["endpoints"][1]["active_connections"] == 0
    names = {json.loads(http_request(sl.port(), "GET", "/x")[2])["name"] for _ in range(10)}
    assert names == {"a"}, names
    doc = json.loads(admin(sl, "GET", "/clusters")[2])
    assert doc["clusters"][0]["endpoints"][1]["draining"] is True
    assert admin(sl, "POST", "/clusters/up/endpoints/1.2.3.4:5/drain")[0] == 404
    assert admin(sl, "POST", "/clusters/nope/endpoints/%s/drain" % a.address)[0] == 404
    sl.stop()


@case
def healthcheck_fail_and_drain_control_readiness():
    up = Upstream()
    cfg = admin_config(up)
    cfg["shutdown"] = {"pre_drain_ms": 500, "drain_ms": 1000, "teardown_ms": 500}
    sl = Sluice(cfg)
    assert admin(sl, "POST", "/healthcheck/fail")[0] == 200
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 503
    assert admin(sl, "POST", "/healthcheck/ok")[0] == 200
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 200
    assert admin(sl, "POST", "/drain")[0] == 200
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 503
    # pre-drain: traffic is still served
    assert http_request(sl.port(), "GET", "/still")[0] == 200
    assert sl.proc.wait(timeout=10) == 0
    sl.check_clean()


@case
def non_loopback_admin_without_key_is_refused():
    up = Upstream()
    cfg = admin_config(up, key=None)
    cfg["admin"]["address"] = "0.0.0.0:0"
    code, out = run_validate(cfg)
    assert code == 1 and "/admin/api_key" in out, out


@case
def malformed_admin_requests_get_4xx():
    from harness import raw_exchange
    up = Upstream()
    sl = Sluice(admin_config(up))
    out = raw_exchange(sl.admin_port, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out
    big = b"POST /drain HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 2000000\r\n\r\n" + b"a" * 2000000
    out = raw_exchange(sl.admin_port, big, timeout=10)
    assert out.startswith(b"HTTP/1.1 413"), out[:100]
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 200
    sl.stop()


if __name__ == "__main__":
    run_cases()
