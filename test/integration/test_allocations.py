"""Zero heap allocations per proxied request in steady state.

sluice is started with SLUICE_COUNT_ALLOCATIONS=1: the executable's malloc interposer then counts
every allocation made on a worker thread, and GET /debug/allocations on the admin API reports the
count. After a warm-up, N keep-alive requests through router + access_log (json, to a file) must
not add a single allocation. Sanitizer builds keep their own allocator: there the counter is
unavailable and the endpoint answers 404.
"""
import json
import os
import http.client

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until

SANITIZED = bool(os.environ.get("SLUICE_SANITIZE"))


def config(up, log_path):
    cfg = simple_config(up.address, filters_after=[
        {"type": "access_log", "config": {"path": log_path, "format": "json"}}])
    cfg["admin"] = {"address": "127.0.0.1:0"}
    return cfg


def worker_allocations(sl):
    status, _, body = http_request(sl.admin_port, "GET", "/debug/allocations")
    assert status == 200, (status, body)
    return json.loads(body)["worker_allocations"]


def run_requests(conns, n, path="/alloc/test?x=1"):
    for i in range(n):
        conn = conns[i % len(conns)]
        conn.request("GET", path, headers={"Host": "alloc.test", "User-Agent": "alloc-test/1",
                                           "Accept": "*/*"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status


def settle(sl, conns, path, per_request=0):
    """Warm-up: windows of 500 requests until one allocates no more than `per_request` each
    (pools and buffers grow once, sooner or later depending on the machine's load). A per-request
    allocation never settles: after 20 windows the caller's measurement shows it."""
    for _ in range(20):
        before = worker_allocations(sl)
        run_requests(conns, 500, path=path)
        if worker_allocations(sl) - before == 500 * per_request:
            return


@case
def keep_alive_requests_through_router_and_access_log_allocate_nothing():
    up = Upstream()
    import tempfile
    log_path = os.path.join(tempfile.mkdtemp(prefix="sluice-alloc-"), "access.log")
    sl = Sluice(config(up, log_path), env={"SLUICE_COUNT_ALLOCATIONS": "1"})
    if SANITIZED:
        assert http_request(sl.admin_port, "GET", "/debug/allocations")[0] == 404
        sl.stop()
        return
    port = sl.port()
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW) for _ in range(4)]
    # The counter counts: starting the worker and opening connections allocated.
    assert worker_allocations(sl) > 0
    # Warm-up: connection buffers, the upstream pool, the access log's buffers grow once.
    run_requests(conns, 2000)
    settle(sl, conns, "/alloc/test?x=1")
    before = worker_allocations(sl)
    n = 4000
    run_requests(conns, n)
    after = worker_allocations(sl)
    assert after - before == 0, "%d allocations over %d requests (%.4f per request)" % (
        after - before, n, (after - before) / n)
    for c in conns:
        c.close()
    # The requests really went through access_log.
    wait_until(lambda: os.path.exists(log_path) and
               sum(1 for _ in open(log_path)) >= 6000, timeout=5 * SLOW, message="access log lines")
    sl.stop()


@case
def requests_whose_filter_makes_an_http_call_allocate_nothing():
    # A C module (test/api/async_filter.c) that, on /call/..., pauses the request, calls the
    # cluster through sluice_host_http_call and resumes from the call's callback. The call
    # objects, their buffers and timers are reused per worker.
    up = Upstream()
    import tempfile
    log_path = os.path.join(tempfile.mkdtemp(prefix="sluice-alloc-"), "access.log")
    cfg = config(up, log_path)
    cfg["listeners"][0]["filters"].insert(
        0, {"type": "test_async", "module": os.environ["SLUICE_TEST_MODULE"], "config": {}})
    sl = Sluice(cfg, env={"SLUICE_COUNT_ALLOCATIONS": "1"})
    if SANITIZED:
        sl.stop()
        return
    port = sl.port()
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW) for _ in range(4)]
    # The module itself callocs its per-stream state (one allocation per request, its own); the
    # host must add nothing to that, with or without a call.
    n = 3000
    for path in ("/plain/alloc", "/call/alloc"):
        run_requests(conns, 1000, path=path)
        settle(sl, conns, path, per_request=1)
        upstream_before = up.stats()["requests"]
        before = worker_allocations(sl)
        run_requests(conns, n, path=path)
        after = worker_allocations(sl)
        assert after - before == n, "%s: %d allocations over %d requests, %d of them the module's" % (
            path, after - before, n, n)
        # Each /call request made its call: the upstream saw two requests for it (plus the
        # stats request itself).
        per_request = 2 if path.startswith("/call") else 1
        assert up.stats()["requests"] - upstream_before == per_request * n + 1, up.stats()
    for c in conns:
        c.close()
    sl.stop()


@case
def counter_is_off_unless_asked_for():
    up = Upstream()
    import tempfile
    log_path = os.path.join(tempfile.mkdtemp(prefix="sluice-alloc-"), "access.log")
    sl = Sluice(config(up, log_path))
    status, _, body = http_request(sl.admin_port, "GET", "/debug/allocations")
    assert status == 404, (status, body)
    assert b"SLUICE_COUNT_ALLOCATIONS" in body
    sl.stop()


if __name__ == "__main__":
    run_cases()
