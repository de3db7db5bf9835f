"""least_request through the real binary: power of two choices over the active requests that the
whole process (every worker) has in flight to each endpoint."""
import http.client
import json
import threading
import time

from harness import Sluice, Upstream, case, run_cases, simple_config


def cluster_cfg(ups, workers):
    c = {"name": "up", "endpoints": [{"address": u.address} for u in ups],
         "lb_policy": "least_request"}
    cfg = simple_config(ups[0].address, clusters=[c])
    cfg["workers"] = workers
    return cfg


def overlapping_requests(port, n, spacing_s):
    """`n` requests, each on its own connection, started one after the other every `spacing_s`
    without waiting for the earlier ones to finish. Returns the upstream names that answered."""
    names = [None] * n
    errors = []

    def one(i):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", "/r%d" % i)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (resp.status, body)
            names[i] = json.loads(body)["name"]
            conn.close()
        except Exception as e:  # reported below, in the main thread
            errors.append(repr(e))

    threads = []
    for i in range(n):
        t = threading.Thread(target=one, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(spacing_s)  # pacing the load, not waiting for a condition
    for t in threads:
        t.join(30)
    assert not errors, errors
    return names


@case
def least_request_sends_almost_everything_to_the_idle_endpoint():
    # One endpoint answers after 1 s, the other at once: every request sent to the slow one stays
    # active for a second, so power of two choices over active requests (with two endpoints,
    # always comparing both) sends the next requests to the fast one. Round robin or random
    # would send about half to the slow one.
    slow, fast = Upstream("slow", delay_ms=1000), Upstream("fast")
    for workers in (1, 2):
        sl = Sluice(cluster_cfg([slow, fast], workers))
        port = sl.port()
        names = overlapping_requests(port, 50, 0.02)
        share = names.count("fast") / len(names)
        assert names.count("fast") + names.count("slow") == 50, names
        assert share >= 0.85, (workers, names.count("slow"), names)
        sl.stop()


run_cases()
