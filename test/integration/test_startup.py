"""Bind first: with 20,000 routes (10,000 regexes, seconds of Hyperscan compilation) the port
accepts long before the config is live; a request that arrives early is served once the config
is live, or gets 503 after startup.wait_for_config_ms. Plus the shutdown-phase checks."""
import json
import os
import re
import signal
import socket
import time

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, wait_until


# 20,000 routes compile in ~8 s in a release build; under a sanitizer the same compile takes
# ~80 s per case (the sanitizer allocator), so a sanitized build uses 4,000: still seconds of
# compilation, which is all the bind-first cases need, at a fifth of the suite's time.
ROUTE_COUNT = 4000 if os.environ.get("SLUICE_SANITIZE") else 20000


def big_config(up, wait_ms=None):
    routes = []
    for i in range(ROUTE_COUNT):
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
    port = int(m.group(1))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)  # accepted by the kernel now
    s.sendall(b"GET /p%d/early HTTP/1.1\r\nHost: h\r\n\r\n" % (ROUTE_COUNT - 1))
    assert "ready:" not in sl.stderr_text(), "config was live before we could even connect"

    # Until the config is live the early request is held: no byte of an answer comes back.
    def live_or_check_unanswered():
        if "is live on" in sl.stderr_text():
            return True
        if readable(s):
            # It may have gone live since: "is live on" is written by sluice's logger thread,
            # which can trail the worker's answer by a moment. An answer that came before the
            # config was live is not followed by that line within 2 s (building it takes longer).
            deadline = time.time() + 2 * SLOW
            while "is live on" not in sl.stderr_text() and time.time() < deadline:
                time.sleep(0.01)
            if "is live on" not in sl.stderr_text():
                raise AssertionError("answered before the config was live: %r\n%s"
                                     % (s.recv(65536)[:300], sl.stderr_text()[-2000:]))
            return True
        assert sl.proc.poll() is None, sl.stderr_text()
        return False
    wait_until(live_or_check_unanswered, timeout=120, message="the config to go live")
    resp = read_response(s, 30 * SLOW)
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    s.close()
    # "ready:" is logged once every worker acknowledged the config, a little after "is live".
    wait_until(lambda: re.search(r"ready: .*\((\d+) ms after start\)", sl.stderr_text()),
               timeout=30, message="the ready line")
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
    wait_until(lambda: up.stats()["in_flight"] >= 2, message="the slow request at the upstream")  # + /stats
    sl.proc.send_signal(signal.SIGTERM)
    # pre-drain: not ready, still serving new connections
    wait_until(lambda: http_request(sl.admin_port, "GET", "/ready")[0] == 503, message="/ready 503")
    assert http_request(port, "GET", "/during-pre-drain")[0] == 200

    # drain (after pre_drain_ms): new connections are refused
    def refused():
        try:
            http_request(port, "GET", "/after-pre-drain", timeout=2)
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            return True
        return False
    wait_until(refused, timeout=5, message="new connections refused once pre-drain is over")
    t.join()
    assert slow["resp"][0] == 200, slow  # the in-flight request completed
    # Bounded: pre_drain + drain + teardown is 4.6 s; a process still there well after is stuck.
    assert sl.proc.wait(timeout=10 * SLOW) == 0
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


class GatedJwks:
    """A JWKS endpoint that holds every answer until the test calls release()."""

    def __init__(self, doc):
        import http.server
        import threading
        self.hits = 0
        self.released = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                outer.released.wait(60)
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self):
        self.released.set()


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(secret, issuer):
    import hashlib
    import hmac
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64url(json.dumps({"iss": issuer, "sub": "alice", "exp": int(time.time()) + 600}).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def ready(sl):
    status, _, body = http_request(sl.admin_port, "GET", "/ready", timeout=5)
    return status, body.decode()


def wait_ready_body(sl, needle, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = ready(sl)
        if needle in last[1]:
            return last
        assert sl.proc.poll() is None, sl.stderr_text()
        time.sleep(0.02)
    raise AssertionError("/ready never said %r (last %r):\n%s" % (needle, last, sl.stderr_text()[-3000:]))


def readable(s, window=0):
    """True if `s` has data (or EOF) now, or within `window` seconds."""
    import select
    return bool(select.select([s], [], [], window)[0])


@case
def bind_first_with_a_slow_dns_step_and_a_slow_jwks():
    """20,000 routes, a JWKS cluster behind a hostname whose lookup blocks until the test lets it
    answer, and a JWKS server that answers only when the test lets it: the listener accepts and the
    admin port answers at once; /ready answers 503 naming each step it waits for, and 200 last."""
    env, gate = slow_dns_env()
    secret = os.urandom(32)
    issuer = "https://idp.test/"
    jwks = GatedJwks({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64url(secret)}]})
    up = Upstream()
    cfg = big_config(up, wait_ms=600000)
    idp = "idp.slow.sluice.test:%d" % jwks.port
    cfg["clusters"].append({"name": "idp", "endpoints": [{"address": idp}]})
    cfg["listeners"][0]["filters"].insert(0, {"type": "jwt_authn", "config": {
        "providers": [{"name": "idp", "issuer": issuer, "algorithms": ["HS256"],
                       "jwks": {"cluster": "idp", "path": "/jwks", "cache_ms": 60000}}],
        "rules": [{"match": {"prefix": "/secure"}, "requires": "idp"}]}})
    sl = Sluice(cfg, expect_ready=False, env=env)
    m = wait_for(sl, r"listening listener=web address=\S+:(\d+)", 30 * SLOW)
    port = int(m.group(1))
    sl.admin_port = int(wait_for(sl, r"admin listening address=\S+:(\d+)", 30 * SLOW).group(1))
    early = socket.create_connection(("127.0.0.1", port), timeout=5)  # the kernel accepts it now
    early.sendall(b"GET /p%d/early HTTP/1.1\r\nHost: h\r\n\r\n" % (ROUTE_COUNT - 1))
    t_accepted = time.time()

    # While the 20,000 routes compile: liveness is fine, readiness is not.
    assert http_request(sl.admin_port, "GET", "/healthz", timeout=5)[0] == 200
    status, body = ready(sl)
    assert status == 503 and body.startswith("not ready"), (status, body)

    # The config is built; the JWKS cluster's hostname does not resolve until the gate opens.
    status, body = wait_ready_body(sl, "resolving idp/" + idp, 120 * SLOW)
    assert status == 503, body
    assert http_request(sl.admin_port, "GET", "/healthz", timeout=5)[0] == 200
    # DNS is gated, so the config cannot go live: watch for a wrong early answer for a moment.
    assert not readable(early, 0.2), "answered before the config was live"
    assert "ready:" not in sl.stderr_text()
    open_gate(gate)

    # Live (the early request is served), but the first JWKS fetch has not answered: not ready.
    resp = read_response(early, 30 * SLOW)
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    early.close()
    status, body = wait_ready_body(sl, "first JWKS fetch of provider \"idp\"", 30 * SLOW)
    assert status == 503, body
    wait_until(lambda: jwks.hits >= 1, timeout=10 * SLOW, message="JWKS fetch")
    assert ready(sl)[0] == 503
    assert "ready:" not in sl.stderr_text()
    jwks.release()
    wait_until(lambda: ready(sl)[0] == 200, timeout=10 * SLOW, message="/ready 200")
    t_ready = time.time()

    token = hs256_token(secret, issuer)
    assert http_request(port, "GET", "/secure/x", {"Authorization": "Bearer " + token})[0] == 200
    assert http_request(port, "GET", "/secure/x")[0] == 401
    text = sl.stderr_text()
    bound_ms = int(re.search(r"bound 1 listener\(s\) in (\d+) ms", text).group(1))
    ready_ms = int(re.search(r"ready: .*\((\d+) ms after start\)", text).group(1))
    print("bound %d ms, ready %d ms after start; accepted %.2f s before ready" %
          (bound_ms, ready_ms, t_ready - t_accepted))
    assert bound_ms < ready_ms
    assert sl.stop() == 0


def slow_dns_env():
    build = os.environ.get("SLUICE_BUILD_DIR", os.path.join(os.environ.get("SLUICE_SOURCE_DIR", "."), "build"))
    shim = os.path.join(build, "test", "libsluice_test_slow_dns.so")
    assert os.path.exists(shim), shim
    import tempfile
    gate = os.path.join(tempfile.mkdtemp(prefix="sluice-dns-"), "gate")
    env = {"LD_PRELOAD": shim, "SLUICE_TEST_DNS_GATE": gate}
    if os.environ.get("SLUICE_SANITIZE"):
        env["ASAN_OPTIONS"] = "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")
    return env, gate


def open_gate(gate, address="127.0.0.1"):
    with open(gate + ".tmp", "w") as f:
        f.write(address + "\n")
    os.replace(gate + ".tmp", gate)


@case
def a_reload_resolves_new_hostnames_before_it_goes_live():
    """PUT /config adding a cluster behind a slow hostname answers only once the name resolved;
    meanwhile the live config keeps serving, the admin port answers, and a second reload is
    refused with a reason. Then the new route works."""
    import threading
    from harness import simple_config
    env, gate = slow_dns_env()
    one = Upstream("one")
    two = Upstream("two")
    cfg = simple_config(one.address)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    sl = Sluice(cfg, env=env)
    port = sl.port()
    new = json.loads(json.dumps(cfg))
    new["workers"] = 1
    new["listeners"][0]["address"] = "127.0.0.1:%d" % port
    new["clusters"].append({"name": "two", "endpoints": [{"address": "two.slow.sluice.test:%d" % two.port}]})
    routes = new["listeners"][0]["filters"][0]["config"]["virtual_hosts"][0]["routes"]
    routes.insert(0, {"match": {"prefix": "/two"}, "cluster": "two"})
    answer = {}
    t = threading.Thread(target=lambda: answer.update(r=http_request(
        sl.admin_port, "PUT", "/config", body=json.dumps(new).encode(), timeout=60 * SLOW)))
    t.start()
    wait_for(sl, r"reload: resolving 1 new hostname endpoint", 20 * SLOW)
    assert "r" not in answer
    # The old config serves, the admin port answers, another reload is refused while pending.
    status, _, body = http_request(port, "GET", "/two/x")
    assert status == 200 and json.loads(body)["name"] == "one", body
    assert http_request(sl.admin_port, "GET", "/healthz")[0] == 200
    status, _, body = http_request(sl.admin_port, "POST", "/reload")
    assert status == 400 and b"still resolving its hostnames" in body, (status, body)
    assert "r" not in answer
    open_gate(gate)
    t.join(30 * SLOW)
    status, _, body = answer["r"]
    assert status == 200 and json.loads(body)["generation"] == 2, (status, body)
    status, _, body = http_request(port, "GET", "/two/x")
    assert status == 200 and json.loads(body)["name"] == "two", body

    # A client that goes away while its reload waits: the reload still completes, nothing breaks.
    os.remove(gate)  # lookups block again
    third = json.loads(json.dumps(new))
    third["clusters"].append({"name": "three", "endpoints": [{"address": "three.slow.sluice.test:%d" % two.port}]})
    routes = third["listeners"][0]["filters"][0]["config"]["virtual_hosts"][0]["routes"]
    routes.insert(0, {"match": {"prefix": "/three"}, "cluster": "three"})
    data = json.dumps(third).encode()
    s = socket.create_connection(("127.0.0.1", sl.admin_port), timeout=5)
    s.sendall(b"PUT /config HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    wait_for(sl, r"reload: resolving 1 new hostname endpoint\(s\) before generation 3", 20 * SLOW)
    s.close()  # the FIN is on its way before the gate opens: the answer finds the client gone
    open_gate(gate)
    wait_for(sl, r"config generation 3 is live", 20 * SLOW)
    status, _, body = http_request(port, "GET", "/three/x")
    assert status == 200 and json.loads(body)["name"] == "two", body
    assert http_request(sl.admin_port, "GET", "/healthz")[0] == 200
    assert sl.stop() == 0


@case
def sigterm_while_the_config_compiles_exits_0():
    up = Upstream()
    sl = Sluice(big_config(up, wait_ms=600000), expect_ready=False)
    wait_for(sl, r"listening listener=web", 30 * SLOW)
    sl.admin_port = int(wait_for(sl, r"admin listening address=\S+:(\d+)", 30 * SLOW).group(1))
    status, body = ready(sl)
    assert status == 503 and "building the config" in body, (status, body)
    sl.proc.send_signal(signal.SIGTERM)
    assert sl.proc.wait(timeout=120 * SLOW) == 0, sl.stderr_text()
    assert "ready:" not in sl.stderr_text()


if __name__ == "__main__":
    run_cases()
