"""Active health checks: a dead endpoint is marked unhealthy within interval × threshold, traffic
avoids it with no failed request, and it comes back."""
import json
import subprocess

from harness import SLOW, UPSTREAM, Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until

KEY = "hc-key"


@case
def dead_endpoint_is_ejected_and_comes_back():
    # Probe timeouts scale with SLOW: a sanitizer build on a busy machine answers slower.
    a, b = Upstream("a"), Upstream("b")
    hc = {"path": "/healthz", "interval_ms": 100, "timeout_ms": 200 * SLOW, "healthy_threshold": 2,
          "unhealthy_threshold": 2, "expected_statuses": [200]}
    cfg = simple_config(a.address, clusters=[{"name": "up", "endpoints": [{"address": a.address},
                                                                          {"address": b.address}],
                                              "health_check": hc}])
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": KEY}
    sl = Sluice(cfg)
    auth = {"Authorization": "Bearer " + KEY}

    def endpoints():
        doc = json.loads(http_request(sl.admin_port, "GET", "/clusters", auth)[2])
        return {e["address"]: e["healthy"] for e in doc["clusters"][0]["endpoints"]}

    assert endpoints() == {a.address: True, b.address: True}
    b.stop()
    # Within interval × threshold (0.2 s) plus slack for the machine.
    wait_until(lambda: not endpoints()[b.address], timeout=0.1 * 2 + 1.0, message="b marked unhealthy")
    # No failed request once it is out.
    for i in range(30):
        status, _, body = http_request(sl.port(), "GET", "/x")
        assert status == 200 and json.loads(body)["name"] == "a", (status, body)
    _, _, metrics = http_request(sl.admin_port, "GET", "/metrics", auth)
    assert ('sluice_upstream_endpoint_healthy{cluster="up",endpoint="%s"} 0' % b.address).encode() in metrics
    # It comes back on the same port.
    proc = subprocess.Popen([UPSTREAM, "--listen", b.address, "--name", "b"], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        wait_until(lambda: endpoints()[b.address], timeout=5, message="b healthy again")
        names = {json.loads(http_request(sl.port(), "GET", "/x")[2])["name"] for _ in range(10)}
        assert names == {"a", "b"}, names
    finally:
        proc.kill()
        proc.wait()
    sl.stop()


@case
def all_endpoints_down_is_503_at_once():
    a = Upstream("a")
    hc = {"path": "/healthz", "interval_ms": 100, "timeout_ms": 200 * SLOW, "unhealthy_threshold": 1}
    cfg = simple_config(a.address, clusters=[{"name": "up", "endpoints": [{"address": a.address}],
                                              "health_check": hc}])
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": KEY}
    sl = Sluice(cfg)
    a.stop()
    metric = ('sluice_upstream_endpoint_healthy{cluster="up",endpoint="%s"} 0' % a.address).encode()
    wait_until(lambda: metric in http_request(sl.admin_port, "GET", "/metrics",
                                              {"Authorization": "Bearer " + KEY})[2],
               message="the endpoint marked unhealthy")
    # No healthy endpoint: answered 503 without a connect attempt (a failed connect would be 502 UF).
    status, _, body = http_request(sl.port(), "GET", "/x")
    assert status == 503, (status, body)
    sl.stop()


@case
def failing_status_marks_unhealthy():
    a, b = Upstream("a"), Upstream("b")
    hc = {"path": "/status/500", "interval_ms": 100, "timeout_ms": 200 * SLOW, "unhealthy_threshold": 1,
          "expected_statuses": [200]}
    cfg = simple_config(a.address, clusters=[{"name": "up", "endpoints": [{"address": a.address}],
                                              "health_check": hc},
                                             {"name": "other", "endpoints": [{"address": b.address}]}])
    sl = Sluice(cfg)
    # Ready waits for the first health-check round, and one failing probe marks it unhealthy.
    assert http_request(sl.port(), "GET", "/x")[0] == 503
    sl.stop()


@case
def outlier_detection_ejects_a_failing_endpoint_within_the_cap():
    good, bad, bad2 = Upstream("good"), Upstream("bad", status=500), Upstream("bad2", status=503)
    od = {"consecutive_5xx": 3, "base_ejection_ms": 5000, "max_ejection_percent": 50}
    cfg = simple_config(good.address, clusters=[{"name": "up", "outlier_detection": od, "endpoints": [
        {"address": good.address}, {"address": bad.address}]},
        {"name": "allbad", "outlier_detection": od, "endpoints": [
            {"address": bad.address}, {"address": bad2.address}]}],
        routes=[{"match": {"prefix": "/allbad/"}, "cluster": "allbad"}, {"match": {"prefix": "/"}, "cluster": "up"}])
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": KEY}
    sl = Sluice(cfg)
    statuses = [http_request(sl.port(), "GET", "/x")[0] for _ in range(10)]
    assert statuses.count(500) == 3, statuses  # the bad endpoint's 3rd 5xx ejects it
    statuses = [http_request(sl.port(), "GET", "/x")[0] for _ in range(20)]
    assert statuses == [200] * 20, statuses
    doc = json.loads(http_request(sl.admin_port, "GET", "/clusters", {"Authorization": "Bearer " + KEY})[2])
    eps = {e["address"]: e["ejected"] for e in doc["clusters"][0]["endpoints"]}
    assert eps == {good.address: False, bad.address: True}, eps
    # Both endpoints failing: the 50 % cap keeps one in the rotation.
    for _ in range(20):
        http_request(sl.port(), "GET", "/allbad/x")
    doc = json.loads(http_request(sl.admin_port, "GET", "/clusters", {"Authorization": "Bearer " + KEY})[2])
    ejected = [e["ejected"] for e in doc["clusters"][1]["endpoints"]]
    assert ejected.count(True) == 1, ejected
    sl.stop()


@case
def ready_waits_for_the_first_health_check_round():
    """/ready answers 503 naming the round until every endpoint has had its first result."""
    up = Upstream()
    hc = {"path": "/delay?ms=1500", "interval_ms": 10000, "timeout_ms": 5000,
          "healthy_threshold": 1, "unhealthy_threshold": 1, "expected_statuses": [200]}
    cfg = simple_config(up.address, clusters=[{"name": "up", "endpoints": [{"address": up.address}],
                                               "health_check": hc}])
    cfg["admin"] = {"address": "127.0.0.1:0"}
    sl = Sluice(cfg, expect_ready=False)
    wait_until(lambda: "is live on" in sl.stderr_text() and "admin listening" in sl.stderr_text(),
               timeout=10, message="config live and admin listening")
    sl._scan(sl.stderr_text())
    assert http_request(sl.port(), "GET", "/x")[0] == 200  # live: served during the round
    status, _, body = http_request(sl.admin_port, "GET", "/ready")
    assert status == 503 and b"first health check round of cluster up" in body, (status, body)
    # The probe is held at the upstream (1.5 s): not ready while it is in flight.
    wait_until(lambda: up.stats()["in_flight"] >= 2, message="the probe at the upstream (+ this /stats)")
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 503
    wait_until(lambda: http_request(sl.admin_port, "GET", "/ready")[0] == 200, timeout=10, message="ready")
    assert sl.stop() == 0


if __name__ == "__main__":
    run_cases()
