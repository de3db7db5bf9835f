"""Overload protection (config `overload`) against abusive clients, through the real binary.

A slowloris (many connections trickling a head), clients whose requests never finish, and a slow
reader (a big response it never reads) push sluice past low limits: new connections are closed at
accept or new requests get 503 with `connection: close`, sluice_overload_actions_total counts
each action, the process RSS stays bounded while the slow reader holds its connection (sluice
stops reading the upstream when the client does not drain), and ordinary clients are served
again once the abusers leave.
"""
import re
import socket
import threading

from harness import (SLOW, Sluice, Upstream, case, header, http_request, run_cases, run_validate,
                     simple_config, wait_until)


class BigUpstream:
    """An origin that answers /big with a huge body, as fast as the proxy reads it (and counts
    what it could send), and anything else with a small 200. GET only, keep-alive."""

    def __init__(self, size):
        self.size = size
        self.sent = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        block = b"x" * 65536
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                if head.split(b" ")[1].startswith(b"/big"):
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % self.size)
                    left = self.size
                    while left > 0:
                        n = c.send(block[:min(left, len(block))])
                        self.sent += n
                        left -= n
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
        except OSError:
            pass
        finally:
            c.close()


def start(overload, upstream=None, listener_limits=None):
    up = upstream or Upstream()
    limits = {"header_timeout_ms": 60000, "idle_timeout_ms": 60000}
    limits.update(listener_limits or {})
    cfg = simple_config(up.address, listener_extra={"limits": limits},
                        admin={"address": "127.0.0.1:0"}, overload=overload)
    return up, Sluice(cfg)


def metrics(sl):
    return http_request(sl.admin_port, "GET", "/stats/prometheus")[2].decode()


def metric(sl, name, **labels):
    """The value of one series (labels in any order), 0 when absent."""
    for line in metrics(sl).splitlines():
        m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return 0.0


def overload_count(sl, action, reason):
    return metric(sl, "sluice_overload_actions_total", action=action, reason=reason)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def refused(port):
    """True when a new connection is closed by sluice without an HTTP answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    try:
        try:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""
    finally:
        s.close()


def served(port, path="/echo"):
    try:
        return http_request(port, "GET", path, timeout=5)[0] == 200
    except (OSError, http_exception()):
        return False


def http_exception():
    import http.client
    return http.client.HTTPException


@case
def overload_keys_are_validated_with_pointers():
    base = simple_config("127.0.0.1:1")
    for bad, pointer in [
        ({"max_connections": -1}, "/overload/max_connections"),
        ({"max_requests_per_worker": "10"}, "/overload/max_requests_per_worker"),
        ({"max_buffered_bytes_per_worker": 1.5}, "/overload/max_buffered_bytes_per_worker"),
        ({"max_conections": 10}, "/overload/max_conections"),
    ]:
        rc, out = run_validate(dict(base, overload=bad))
        assert rc == 1 and pointer in out, (bad, rc, out)
    rc, out = run_validate(dict(base, overload=7))
    assert rc == 1 and "/overload" in out, out
    rc, out = run_validate(dict(base, overload={"max_connections": 10, "max_requests_per_worker": 5,
                                                "max_buffered_bytes_per_worker": 1 << 20}))
    assert rc == 0, out


def two_listeners(up, workers):
    def listener(name, max_connections):
        return {"name": name, "address": "127.0.0.1:0",
                "limits": {"max_connections": max_connections, "idle_timeout_ms": 60000},
                "filters": [{"type": "router", "config": {"virtual_hosts": [
                    {"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}]}
    return Sluice({"admin": {"address": "127.0.0.1:0"}, "workers": workers,
                   "listeners": [listener("a", 2), listener("b", 3)],
                   "clusters": [{"name": "up", "endpoints": [{"address": up.address}]}]})


def open_served(port):
    """A keep-alive connection that had one request answered (so it is counted), left open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed before an answer"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return s


@case
def listener_max_connections_counts_its_own_connections_on_every_worker():
    """limits.max_connections caps the connections open on that listener, all workers together;
    connections on another listener do not count against it."""
    up = Upstream()
    for workers in (1, 2):
        sl = two_listeners(up, workers)
        a, b = sl.port("a"), sl.port("b")
        held = [open_served(a), open_served(a)]
        wait_until(lambda: metric(sl, "sluice_downstream_connections_active", listener="a") == 2,
                   message="2 connections open on a")
        # a is full: more connections to it are refused, whichever worker takes them.
        for _ in range(4):
            assert refused(a), "a connection over a's limit of 2 was accepted (workers=%d)" % workers
        assert overload_count(sl, "refuse_connection", "listener_max_connections") >= 4
        # b's limit counts b only: all 3 are accepted while a holds 2.
        held += [open_served(b) for _ in range(3)]
        assert refused(b), "a 4th connection to b was accepted"
        # A connection closed on a frees its slot.
        held.pop(0).close()
        wait_until(lambda: metric(sl, "sluice_downstream_connections_active", listener="a") == 1,
                   message="a's closed connection is gone")
        held.append(open_served(a))
        for s in held:
            s.close()
        sl.stop()


@case
def slowloris_is_capped_by_max_connections_and_clients_recover():
    up, sl = start({"max_connections": 8})
    port = sl.port()
    loris = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n")
        loris.append(s)
    wait_until(lambda: metric(sl, "sluice_downstream_connections_active", listener="web") == 8,
               message="8 slowloris connections open")
    for i, s in enumerate(loris):
        s.sendall(b"X-Trickle-%d: 1\r\n" % i)  # still trickling: not a complete head
    assert refused(port), "a 9th connection was not refused"
    assert not served(port)
    assert overload_count(sl, "refuse_connection", "max_connections") >= 2
    # The slowloris connections were not disturbed: each can still finish its request.
    loris[0].sendall(b"\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = loris[0].recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    for s in loris:
        s.close()
    wait_until(lambda: served(port), message="a normal client is served after the slowloris left")
    assert metric(sl, "sluice_downstream_connections_active", listener="web") <= 1
    refusals = overload_count(sl, "refuse_connection", "max_connections")
    for _ in range(20):
        assert served(port)
    assert overload_count(sl, "refuse_connection", "max_connections") == refusals


@case
def requests_past_max_requests_per_worker_get_503_and_close():
    up, sl = start({"max_requests_per_worker": 3})
    port = sl.port()
    hanging = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        s.sendall(b"GET /no-response HTTP/1.1\r\nHost: h\r\n\r\n")
        hanging.append(s)
    wait_until(lambda: up.stats()["in_flight"] == 3 + 1,  # + the /stats request itself
               message="3 requests in flight at the upstream")
    before = up.stats()["requests"]
    status, headers, body = http_request(port, "GET", "/echo")
    assert status == 503, (status, body)
    assert body == b"overloaded\n", body
    assert header(headers, "connection") == "close", headers
    assert overload_count(sl, "shed_request", "max_requests") == 1
    assert metric(sl, "sluice_downstream_requests_total", listener="web", code="5xx") >= 1
    # Connections are not refused for this limit: only the request is shed.
    assert overload_count(sl, "refuse_connection", "max_connections") == 0
    assert up.stats()["requests"] == before + 1  # the shed request never reached the upstream
    for s in hanging:
        s.close()
    wait_until(lambda: served(port), message="requests served again once the abusers left")
    for _ in range(10):
        assert served(port)
    assert overload_count(sl, "shed_request", "max_requests") == 1


@case
def slow_reader_is_backpressured_and_sheds_past_max_buffered_bytes():
    limit = 256 * 1024
    big = 1024 * 1024 * 1024
    up = BigUpstream(big)
    _, sl = start({"max_buffered_bytes_per_worker": limit}, upstream=up)
    port = sl.port()
    assert served(port)
    baseline = rss_kb(sl.proc.pid)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", port))
    reader.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")

    def shedding():
        return (overload_count(sl, "refuse_connection", "max_buffered_bytes")
                + overload_count(sl, "shed_request", "max_buffered_bytes")) > 0 and not served(port)

    # The response fills the client's and the kernel's buffers, then sluice's own: past the
    # limit, new connections are refused (or requests shed) while the reader holds on.
    wait_until(lambda: refused(port) or shedding(), timeout=20, message="sluice past its buffered-bytes limit")
    assert overload_count(sl, "refuse_connection", "max_buffered_bytes") + \
        overload_count(sl, "shed_request", "max_buffered_bytes") >= 1
    # While the reader never reads, sluice stops reading the upstream: the upstream gets stuck
    # far short of the body's end and sluice's RSS stays far below it, sample after sample.
    peak = 0
    for _ in range(30):
        assert refused(port) or not served(port)
        peak = max(peak, rss_kb(sl.proc.pid))
    print("slow reader: RSS baseline %d kB, peak %d kB; upstream sent %d kB of %d kB"
          % (baseline, peak, up.sent // 1024, big // 1024), flush=True)
    assert peak - baseline < 64 * 1024, "RSS grew by %d kB" % (peak - baseline)
    assert up.sent < 128 * 1024 * 1024, "the upstream could send %d bytes" % up.sent
    reader.close()
    wait_until(lambda: served(port), timeout=10, message="clients served again after the slow reader left")
    for _ in range(10):
        assert served(port)
    assert rss_kb(sl.proc.pid) - baseline < 64 * 1024


@case
def without_overload_config_nothing_is_shed():
    up, sl = start({})
    port = sl.port()
    hanging = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        s.sendall(b"GET /no-response HTTP/1.1\r\nHost: h\r\n\r\n")
        hanging.append(s)
    wait_until(lambda: up.stats()["in_flight"] == 20 + 1, message="20 requests in flight")
    assert served(port)
    text = metrics(sl)
    assert "sluice_overload_actions_total" in text, "the series exist from the start (at 0)"
    for line in text.splitlines():
        if line.startswith("sluice_overload_actions_total{"):
            assert line.endswith(" 0"), line
    for s in hanging:
        s.close()


if __name__ == "__main__":
    run_cases()
