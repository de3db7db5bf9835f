"""Shutdown drain and keep-alive client connections: idle ones stay usable through pre-drain and
are closed as soon as the drain phase starts; busy ones finish their exchange with
`Connection: close` and are closed after it."""
import json
import select
import signal
import socket
import threading
import time

from harness import SLOW, Sluice, Upstream, case, run_cases, simple_config, wait_until

PRE_DRAIN_MS = 1500


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s):
    """Reads one response with a Content-Length body; returns (status, {name: value}, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed before a response: %r" % data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside a body"
        rest += chunk
    return status, headers, rest[:length]


def exchange(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path).encode())
    return read_response(s)


def closed_by_peer(s, wait_s):
    """Whether the peer closed `s` within `wait_s` (EOF or reset; no data is expected)."""
    ready, _, _ = select.select([s], [], [], wait_s)
    if not ready:
        return False
    try:
        data = s.recv(1)
    except (ConnectionResetError, BrokenPipeError):
        return True
    assert data == b"", "unexpected bytes on an idle connection: %r" % data
    return True


@case
def idle_keep_alive_connections_close_when_drain_starts_busy_ones_after_their_exchange():
    up = Upstream()
    cfg = simple_config(up.address)
    # A long drain phase: if idle connections were only closed when it ends (or at teardown), the
    # close would come long after the deadline below.
    cfg["shutdown"] = {"pre_drain_ms": PRE_DRAIN_MS, "drain_ms": 20000, "teardown_ms": 1000,
                       "grace_period_ms": 60000}
    sl = Sluice(cfg)
    port = sl.port()

    # Three keep-alive connections, each after one complete exchange, plus one that never sent a
    # byte.
    idle, used_in_pre_drain, busy = connect(port), connect(port), connect(port)
    for s in (idle, used_in_pre_drain, busy):
        status, headers, _ = exchange(s, "/first")
        assert status == 200 and headers.get("connection", "").lower() != "close", headers
    silent = connect(port)

    # The busy connection has a request in flight for the whole drain phase we look at: it
    # answers well after the idle ones must have been closed, and keeps the drain phase from
    # ending early (it ends when no connection is left).
    busy_result = {}
    busy_delay_ms = PRE_DRAIN_MS + 4000

    def busy_request():
        try:
            busy_result["response"] = exchange(busy, "/delay?ms=%d" % busy_delay_ms)
            busy_result["closed_after"] = closed_by_peer(busy, 10 * SLOW)
        except Exception as e:  # reported in the main thread
            busy_result["error"] = repr(e)
    t = threading.Thread(target=busy_request)
    t.start()
    deadline = time.time() + 10 * SLOW
    while up.stats()["in_flight"] < 1:
        assert time.time() < deadline, "the busy request never reached the upstream"
        time.sleep(0.01)

    sent = time.monotonic()
    sl.proc.send_signal(signal.SIGTERM)

    # Pre-drain: keep-alive connections still carry requests, and idle ones stay open.
    status, _, _ = exchange(used_in_pre_drain, "/during-pre-drain")
    assert status == 200
    assert "drain: no longer accepting" not in sl.stderr_text(), \
        "pre-drain already over; make PRE_DRAIN_MS longer on this machine"
    assert not closed_by_peer(idle, 0), "an idle connection was closed during pre-drain"

    # Drain: the idle connections are closed soon after the phase starts, while the busy
    # request is still in flight.
    deadline = PRE_DRAIN_MS / 1000 + 2 * SLOW
    for name, s in (("idle", idle), ("idle after a pre-drain request", used_in_pre_drain),
                    ("never used", silent)):
        left = deadline - (time.monotonic() - sent)
        assert closed_by_peer(s, max(left, 0)), \
            "%s connection still open %.1f s after SIGTERM" % (name, deadline)
        # The drain phase's log line is written before it closes anything; the harness may read
        # it a moment after the close.
        wait_until(lambda: "drain: no longer accepting" in sl.stderr_text(), timeout=5,
                   message="the drain line (%s connection closed before the drain phase?)" % name)
    assert "response" not in busy_result and "error" not in busy_result, busy_result

    # The busy connection finishes its exchange with Connection: close, then is closed.
    t.join(busy_delay_ms / 1000 + 10 * SLOW)
    assert "error" not in busy_result, busy_result
    status, headers, _ = busy_result["response"]
    assert status == 200
    assert headers.get("connection", "").lower() == "close", headers
    assert busy_result["closed_after"], "the busy connection stayed open after its response"
    assert sl.proc.wait(timeout=10 * SLOW) == 0
    sl.check_clean()


@case
def a_reload_that_removes_a_listener_closes_its_idle_keep_alive_connections():
    # The same rule as the drain phase, for a listener that a reload removes: its idle keep-alive
    # connections close when the new config is installed (not at their idle timeout, 60 s).
    up = Upstream()
    cfg = simple_config(up.address)
    old = dict(cfg["listeners"][0], name="old")
    cfg["listeners"].append(old)
    sl = Sluice(cfg)
    web_port, old_port = sl.port("web"), sl.port("old")
    conn = connect(old_port)
    status, _, _ = exchange(conn, "/first")
    assert status == 200

    cfg["listeners"] = [dict(cfg["listeners"][0], address="127.0.0.1:%d" % web_port)]
    cfg["workers"] = 1
    cfg["shutdown"] = {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000}
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)
    sl.proc.send_signal(signal.SIGHUP)
    assert closed_by_peer(conn, 10 * SLOW), "idle connection of a removed listener still open"
    # The close may come before the harness has read the log line that follows it.
    wait_until(lambda: "config generation 2 is live" in sl.stderr_text(), timeout=10,
               message="the reload's log line")
    # The remaining listener still serves.
    status, _, _ = exchange(connect(web_port), "/after")
    assert status == 200


run_cases()
