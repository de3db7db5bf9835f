"""Idle keep-alive connections: what they cost, and the per-request objects they hand back.

An idle keep-alive connection holds only its socket, one timer and a few words of state; the
per-request objects (parser, header arena, head buffer, stream) come from the worker's pool when
a request's first bytes arrive and go back once the connection is idle again. These cases check
what a user sees of that: the memory a worker grows by per idle connection, and that a pooled
request state serves the next connection (another listener's limits, interleaved clients, bodies)
as a fresh one would.
"""
import hashlib
import http.client
import json
import os
import resource
import socket

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, simple_config

SANITIZED = bool(os.environ.get("SLUICE_SANITIZE"))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def open_idle(port, n):
    """n keep-alive connections that each made one request and stay open."""
    socks = []
    req = b"GET /idle HTTP/1.1\r\nHost: idle.test\r\n\r\n"
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, "connection %d closed early" % i
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        socks.append(s)
    return socks


@case
def an_idle_keep_alive_connection_costs_under_2_kib():
    # Before the per-request objects were pooled an idle connection cost 4 KiB (BENCHMARKS.md);
    # now ~1.2 KiB: the connection object, libuv's socket handle and one timer.
    if SANITIZED:
        return  # the sanitizer's allocator has its own per-allocation overhead
    n = 3000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * n + 200:
        print("skipped: RLIMIT_NOFILE hard limit %d is below %d" % (hard, 2 * n + 200))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2 * n + 200), hard))
    up = Upstream()
    sl = Sluice(simple_config(up.address))
    port = sl.port()
    warm = open_idle(port, 50)  # the worker's pools and first allocations
    before = rss_kib(sl.proc.pid)
    socks = open_idle(port, n)
    after = rss_kib(sl.proc.pid)
    per_conn = (after - before) / n
    assert per_conn < 2.0, "%.2f KiB per idle keep-alive connection (%d -> %d KiB)" % (
        per_conn, before, after)
    # They are still usable.
    for s in (socks[0], socks[-1], warm[0]):
        s.sendall(b"GET /again HTTP/1.1\r\nHost: idle.test\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    for s in warm + socks:
        s.close()
    sl.stop()


def two_listener_config(up):
    def listener(name, max_head):
        return {"name": name, "address": "127.0.0.1:0", "limits": {"max_request_headers_bytes": max_head},
                "filters": [{"type": "router", "config": {"virtual_hosts": [
                    {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}]}
    return {"listeners": [listener("small", 2048), listener("large", 16384)],
            "clusters": [{"name": "up", "endpoints": [{"address": up.address}]}]}


@case
def a_pooled_request_state_applies_the_limits_of_the_listener_it_serves():
    # One worker: the request state the large listener's connection gives back is the one the
    # small listener's next connection takes (the pool hands out the most recent first).
    up = Upstream()
    sl = Sluice(two_listener_config(up))
    big = {"X-Big": "a" * 3000}
    for _ in range(3):
        assert http_request(sl.port("large"), "GET", "/a", headers=big)[0] == 200
        assert http_request(sl.port("small"), "GET", "/b", headers=big)[0] == 431
        assert http_request(sl.port("small"), "GET", "/c")[0] == 200
    # Keep-alive on both: the large listener's connection serves a big head after the small
    # listener's connection went idle, and the other way round.
    large = http.client.HTTPConnection("127.0.0.1", sl.port("large"), timeout=10 * SLOW)
    small = http.client.HTTPConnection("127.0.0.1", sl.port("small"), timeout=10 * SLOW)
    for _ in range(3):
        assert http_request(0, "GET", "/d", conn=small)[0] == 200
        assert http_request(0, "GET", "/e", headers=big, conn=large)[0] == 200
    assert http_request(0, "GET", "/f", headers=big, conn=small)[0] == 431
    large.close()
    small.close()
    sl.stop()


@case
def interleaved_keep_alive_clients_each_get_their_own_responses():
    # Each request may be served by a request state another connection used last: paths,
    # headers and bodies must never leak from one exchange into the next.
    up = Upstream()
    sl = Sluice(simple_config(up.address))
    conns = [http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10 * SLOW) for _ in range(5)]
    for i in range(60):
        k = (i * 7) % len(conns)
        path = "/echo/c%d/r%d" % (k, i)
        body = (b"body-%d-" % i) * (i + 1) if i % 3 == 0 else b""
        status, _, data = http_request(0, "POST" if body else "GET", path, headers={"X-Req": str(i)},
                                       body=body or None, conn=conns[k])
        assert status == 200, (i, status)
        echoed = json.loads(data)
        assert echoed["path"] == path, (i, echoed["path"])
        assert echoed["method"] == ("POST" if body else "GET"), (i, echoed["method"])
        headers = {name.lower(): value for name, value in echoed["headers"]}
        assert headers.get("x-req") == str(i), (i, headers)
        assert echoed["body_len"] == len(body), (i, echoed["body_len"])
        if body:
            assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest(), i
    for c in conns:
        c.close()
    sl.stop()


if __name__ == "__main__":
    run_cases()
