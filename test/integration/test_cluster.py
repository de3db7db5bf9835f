"""Cluster manager through the real binary: LB policies, circuit breakers, retries."""
import json
import threading
import time

from harness import SLOW, Sluice, Upstream, case, header, http_request, run_cases, simple_config, wait_until


def cluster_cfg(ups, policy, **extra):
    c = {"name": "up", "endpoints": [{"address": u.address} for u in ups], "lb_policy": policy}
    c.update(extra)
    return simple_config(ups[0].address, clusters=[c])


def who(port, path="/x", headers=None):
    status, hs, body = http_request(port, "GET", path, headers or {})
    assert status == 200, (status, body)
    return json.loads(body)["name"]


@case
def hashing_policies_pin_keys_to_endpoints():
    ups = [Upstream("u%d" % i) for i in range(3)]
    for policy in ("ring_hash", "maglev"):
        sl = Sluice(cluster_cfg(ups, policy, hash_on={"header": "x-user"}))
        port = sl.port()
        mapping = {}
        for k in range(30):
            mapping[k] = who(port, headers={"X-User": "user-%d" % k})
        for k in range(30):
            assert who(port, headers={"X-User": "user-%d" % k}) == mapping[k], policy
        assert len(set(mapping.values())) >= 2, mapping
        sl.stop()


@case
def random_and_least_request_spread_load():
    ups = [Upstream("u%d" % i) for i in range(2)]
    for policy in ("random", "least_request"):
        sl = Sluice(cluster_cfg(ups, policy))
        counts = {}
        for i in range(200):
            n = who(sl.port())
            counts[n] = counts.get(n, 0) + 1
        assert len(counts) == 2 and min(counts.values()) > 50, (policy, counts)
        sl.stop()


@case
def least_request_prefers_the_fast_endpoint():
    slow, fast = Upstream("slow", delay_ms=100), Upstream("fast")
    sl = Sluice(cluster_cfg([slow, fast], "least_request"))
    port = sl.port()
    counts = {"slow": 0, "fast": 0}
    lock = threading.Lock()
    stop = time.time() + 2

    def load():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.time() < stop:
            conn.request("GET", "/x")
            name = json.loads(conn.getresponse().read())["name"]
            with lock:
                counts[name] += 1
    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Round robin alternates, so each client would complete about as many slow as fast requests.
    assert counts["fast"] > 2 * counts["slow"], counts
    sl.stop()


@case
def circuit_breaker_overflow_is_503_uo():
    up = Upstream()
    cfg = cluster_cfg([up], "round_robin", circuit_breaker={"max_requests": 2, "max_pending": 100})
    cfg["listeners"][0]["filters"].append({"type": "access_log", "config": {"path": "access.log"}})
    sl = Sluice(cfg)
    port = sl.port()
    threads = [threading.Thread(target=http_request, args=(port, "GET", "/delay?ms=%d" % (1500 * SLOW)))
               for _ in range(2)]
    for t in threads:
        t.start()
    # Both slow requests are at the upstream (the third in flight there is this /stats request).
    wait_until(lambda: up.stats()["in_flight"] >= 3, message="two requests in flight upstream")
    status, hs, body = http_request(port, "GET", "/overflow")
    assert status == 503, (status, body)
    for t in threads:
        t.join()
    assert http_request(port, "GET", "/fine")[0] == 200
    sl.stop()
    import os
    lines = [json.loads(l) for l in open(os.path.join(sl.dir, "access.log"))]
    over = [l for l in lines if l["path"] == "/overflow"]
    assert over and "UO" in over[0]["flags"], lines


@case
def connect_failure_retries_on_another_endpoint():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    up = Upstream("alive")
    cfg = simple_config(up.address, routes=[{"match": {"prefix": "/"}, "cluster": "up",
                                              "retry": {"attempts": 2, "on": ["connect-failure"]}}],
                        clusters=[{"name": "up", "endpoints": [{"address": dead}, {"address": up.address}]}])
    sl = Sluice(cfg)
    for i in range(10):
        assert who(sl.port()) == "alive"
    sl.stop()


def failing_pair_config(retry, circuit_breaker=None, bad_status=503):
    bad, good = Upstream("bad", status=bad_status), Upstream("good")
    cluster = {"name": "up", "endpoints": [{"address": bad.address}, {"address": good.address}]}
    if circuit_breaker is not None:
        cluster["circuit_breaker"] = circuit_breaker
    cfg = simple_config(good.address, routes=[{"match": {"prefix": "/"}, "cluster": "up", "retry": retry}],
                        clusters=[cluster], admin={"address": "127.0.0.1:0"})
    return bad, good, cfg


def metric(sl, name, **labels):
    body = http_request(sl.admin_port, "GET", "/stats/prometheus")[2].decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1:line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@case
def retries_resend_a_kept_request_body():
    import hashlib
    bad, good, cfg = failing_pair_config({"attempts": 1, "on": ["5xx"]})
    sl = Sluice(cfg)
    port = sl.port()
    body = bytes((i * 7) % 251 for i in range(20000))
    for i in range(6):
        status, hs, resp = http_request(port, "POST", "/echo", {"content-type": "application/octet-stream"}, body)
        assert status == 200, (i, status, resp)
        echo = json.loads(resp)
        assert echo["name"] == "good" and echo["body_len"] == len(body), echo
        assert echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo
    # A chunked body is kept and resent the same way.
    import http.client
    for i in range(4):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/echo", body=iter([body[:7000], body[7000:]]), encode_chunked=True,
                     headers={"transfer-encoding": "chunked"})
        r = conn.getresponse()
        echo = json.loads(r.read())
        conn.close()
        assert r.status == 200 and echo["body_sha256"] == hashlib.sha256(body).hexdigest(), (i, echo)
    # Round robin alternates, so about half of the requests went to `bad` first and were retried.
    # (The upstream's /stats counts every request it served, itself included.)
    to_bad = bad.stats()["requests"] - 1
    assert to_bad >= 2, to_bad
    assert metric(sl, "sluice_upstream_retries_total", cluster="up", result="retried") == to_bad
    sl.stop()


@case
def a_body_larger_than_the_replay_buffer_is_not_retried():
    bad, good, cfg = failing_pair_config({"attempts": 1, "on": ["5xx"]})
    sl = Sluice(cfg)
    port = sl.port()
    body = b"z" * (200 * 1024)
    statuses = [http_request(port, "POST", "/echo", {}, body)[0] for _ in range(6)]
    # Requests that reached `bad` first get its 503: the body was streamed beyond what was kept.
    assert set(statuses) == {200, 503}, statuses
    to_bad, to_good = bad.stats()["requests"] - 1, good.stats()["requests"] - 1
    assert statuses.count(503) == to_bad and statuses.count(200) == to_good, (statuses, to_bad, to_good)
    assert metric(sl, "sluice_upstream_retries_total", cluster="up", result="retried") == 0
    sl.stop()


@case
def the_retry_budget_caps_retries():
    # Both endpoints fail; three retries per request are allowed by the route.
    def run(circuit_breaker):
        a, b = Upstream("a", status=503), Upstream("b", status=503)
        cluster = {"name": "up", "endpoints": [{"address": a.address}, {"address": b.address}]}
        if circuit_breaker:
            cluster["circuit_breaker"] = circuit_breaker
        cfg = simple_config(a.address, routes=[{"match": {"prefix": "/"}, "cluster": "up",
                                                 "retry": {"attempts": 3, "on": ["5xx"]}}],
                            clusters=[cluster], admin={"address": "127.0.0.1:0"})
        sl = Sluice(cfg)
        for _ in range(10):
            assert http_request(sl.port(), "GET", "/x")[0] == 503
        sent = a.stats()["requests"] + b.stats()["requests"] - 2
        refused = metric(sl, "sluice_upstream_retries_total", cluster="up", result="budget_exhausted")
        retried = metric(sl, "sluice_upstream_retries_total", cluster="up", result="retried")
        sl.stop()
        a.stop()
        b.stop()
        return sent, retried, refused

    # The default budget (20 % of active requests, at least 3 concurrent retries) lets one
    # request at a time retry fully.
    assert run(None) == (40, 30, 0)
    # A budget of zero: no retry at all, every refusal counted.
    assert run({"retry_budget_percent": 0, "min_retry_concurrency": 0}) == (10, 0, 10)


if __name__ == "__main__":
    run_cases()
