"""Cluster manager through the real binary: LB policies, circuit breakers, retries."""
import json
import threading
import time

from harness import Sluice, Upstream, case, header, http_request, run_cases, simple_config


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
    threads = [threading.Thread(target=http_request, args=(port, "GET", "/delay?ms=1000")) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
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


if __name__ == "__main__":
    run_cases()
