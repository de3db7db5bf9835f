"""Bind first: with 20,000 routes (10,000 regexes, seconds of Hyperscan compilation) the port
accepts long before the config is live; a request that arrives early is served once the config
is live, or gets 503 after startup.wait_for_config_ms. Plus the shutdown-phase checks."""
import json
import os
import re
import signal
import socket
import time

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases


def big_config(up, wait_ms=None):
    routes = []
    for i in range(20000):
        if i % 2 == 0:
            routes.append({"match": {"regex": "^/r%d/[a-z]+/[0-9]{1,8}$" % i}, "cluster": "up"})
        else:
            routes.append({"match": {"prefix": "/p%d/" % i}, "cluster": "up"})
    routes.append({"match": {"prefix": "/"}, "cluster": "up"})
    cfg = {"admin": {"address": "127.0.0.1:0"},
           "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
               {"type": "router", "config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": routes}]}}]}],
           "clusters": [{"name": "up", "endpoints": [{"address": up.address}]}]}
    if wait_ms is not None:
        cfg["startup"] = {"wait_for_config_ms": wait_ms}
    return cfg


def wait_for(sl, pattern, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, sl.stderr_text())
        if m:
            return m
        assert sl.proc.poll() is None, sl.stderr_text()
        time.sleep(0.005)
    raise AssertionError("no %r in:\n%s" % (pattern, sl.stderr_text()))


def read_response(s, timeout):
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@case
def port_accepts_long_before_the_config_is_live():
    up = Upstream()
    sl = Sluice(big_config(up, wait_ms=600000), expect_ready=False)
    m = wait_for(sl, r"listening listener=web address=\S+:(\d+)", 30 * SLOW)
    t_listen = time.time()
    port = int(m.group(1))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)  # accepted by the kernel now
    s.sendall(b"GET /p19999/early HTTP/1.1\r\nHost: h\r\n\r\n")
    t_sent = time.time()
    assert "ready:" not in sl.stderr_text(), "config was live before we could even connect"
    wait_for(sl, r"ready:", 120 * SLOW)
    t_ready = time.time()
    resp = read_response(s, 30 * SLOW)
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    s.close()
    assert t_ready - t_sent > 0.3, (t_listen, t_sent, t_ready)
    text = sl.stderr_text()
    bound_ms = int(re.search(r"bound 1 listener\(s\) in (\d+) ms", text).group(1))
    ready_ms = int(re.search(r"ready: .*\((\d+) ms after start\)", text).group(1))
    print("bind %d ms, ready %d ms after start" % (bound_ms, ready_ms))
    assert bound_ms < ready_ms
    assert http_request(port, "GET", "/r0/abc/123")[0] == 200
    assert sl.stop() == 0


@case
def early_request_gets_503_after_wait_for_config():
    up = Upstream()
    sl = Sluice(big_config(up, wait_ms=100), expect_ready=False)
    m = wait_for(sl, r"listening listener=web address=\S+:(\d+)", 30 * SLOW)
    port = int(m.group(1))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    resp = read_response(s, 10 * SLOW)
    assert resp.startswith(b"HTTP/1.1 503"), resp[:200]
    s.close()
    wait_for(sl, r"ready:", 120 * SLOW)
    assert http_request(port, "GET", "/after")[0] == 200
    assert sl.stop() == 0


@case
def sigterm_under_load_drains_in_phases():
    from harness import simple_config
    import threading
    import http.client
    up = Upstream()
    cfg = simple_config(up.address)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    cfg["shutdown"] = {"pre_drain_ms": 600, "drain_ms": 3000, "teardown_ms": 1000, "grace_period_ms": 60000}
    sl = Sluice(cfg)
    port = sl.port()
    slow = {}

    def slow_request():
        slow["resp"] = http_request(port, "GET", "/delay?ms=1200", timeout=10)
    t = threading.Thread(target=slow_request)
    t.start()
    time.sleep(0.1)
    t0 = time.time()
    sl.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    # pre-drain: not ready, still serving new connections
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 503
    assert http_request(port, "GET", "/during-pre-drain")[0] == 200
    time.sleep(0.8)
    # drain: new connections are refused
    refused = False
    try:
        http_request(port, "GET", "/after-pre-drain", timeout=2)
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        refused = True
    assert refused
    t.join()
    assert slow["resp"][0] == 200, slow  # the in-flight request completed
    assert sl.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 5.5
    sl.check_clean()


@case
def grace_warning_and_env_overrides():
    from harness import simple_config
    up = Upstream()
    cfg = simple_config(up.address)
    cfg["shutdown"] = {"pre_drain_ms": 0, "drain_ms": 500, "teardown_ms": 500, "grace_period_ms": 100}
    os.environ["SLUICE_SHUTDOWN_DRAIN_MS"] = "18446744073709551615"
    os.environ["SLUICE_SHUTDOWN_TEARDOWN_MS"] = "250"
    try:
        sl = Sluice(cfg)
    finally:
        del os.environ["SLUICE_SHUTDOWN_DRAIN_MS"]
        del os.environ["SLUICE_SHUTDOWN_TEARDOWN_MS"]
    text = sl.stderr_text()
    assert "SLUICE_SHUTDOWN_DRAIN_MS" in text and "ignored" in text, text
    assert "pre_drain_ms=0" in text and "drain_ms=500" in text and "teardown_ms=250" in text and \
        "grace_period_ms=100" in text, text
    assert sl.stop() == 0


if __name__ == "__main__":
    run_cases()
