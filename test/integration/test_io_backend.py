"""`sluice run --io auto|io_uring|epoll` (default: $SLUICE_IO, else auto): each way of moving bytes
serves keep-alive requests, large bodies both ways and a WebSocket tunnel; io_uring named
explicitly is refused clearly where the kernel lacks it; bad values are errors."""
import hashlib
import http.client
import json
import os
import socket
import subprocess

from harness import SLUICE, SLOW, Sluice, Upstream, case, recv_until, run_cases, simple_config


def io_uring_fds(pid):
    """How many io_uring instances the process holds (anon_inode:[io_uring] descriptors)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[io_uring]":
                n += 1
        except OSError:
            pass
    return n


def io_uring_available():
    """Whether `--io io_uring` starts here (kernel 6.1+, io_uring not disabled)."""
    r = subprocess.run([SLUICE, "run", "-c", "/nonexistent.json", "--io", "io_uring"],
                       capture_output=True, text=True, timeout=30 * SLOW)
    if "not available on this kernel" in r.stderr:
        assert r.returncode == 1, r
        return False
    return True


def exercise(sl, up):
    port = sl.port()
    # Keep-alive: 100 requests on one connection.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW)
    for i in range(100):
        c.request("GET", "/echo?i=%d" % i)
        r = c.getresponse()
        doc = json.loads(r.read())
        assert r.status == 200 and doc["path"] == "/echo?i=%d" % i, doc
    # A 3 MB request body up and a 5 MB response body down, byte for byte.
    body = bytes((i * 7 + i // 251) % 256 for i in range(3 << 20))
    c.request("POST", "/echo", body=body, headers={"content-type": "application/octet-stream"})
    r = c.getresponse()
    doc = json.loads(r.read())
    assert r.status == 200 and doc["body_len"] == len(body), doc
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest(), doc
    c.request("GET", "/bytes?n=%d" % (5 << 20))
    r = c.getresponse()
    data = r.read()
    assert r.status == 200 and len(data) == 5 << 20, (r.status, len(data))
    assert hashlib.sha256(data).hexdigest() == r.getheader("x-body-sha256")
    c.close()
    # A tunnel: WebSocket upgrade, then raw bytes echoed both ways.
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = recv_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    rest = head.split(b"\r\n\r\n", 1)[1]
    payload = os.urandom(200000)
    s.sendall(payload)
    got = rest
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, len(got)
        got += chunk
    assert got == payload
    s.close()


@case
def each_backend_serves_keep_alive_bodies_and_tunnels():
    up = Upstream()
    modes = ["auto", "epoll"] + (["io_uring"] if io_uring_available() else [])
    for mode in modes:
        sl = Sluice(simple_config(up.address), extra_args=["--io", mode])
        exercise(sl, up)
        rings = io_uring_fds(sl.proc.pid)
        if mode == "epoll":
            assert rings == 0, (mode, rings)
        elif mode == "io_uring":
            assert rings >= 1, (mode, rings)  # the worker's ring
        sl.stop()


@case
def sluice_io_sets_the_default_and_the_flag_wins():
    up = Upstream()
    sl = Sluice(simple_config(up.address), env={"SLUICE_IO": "epoll"})
    exercise(sl, up)
    assert io_uring_fds(sl.proc.pid) == 0
    sl.stop()
    if io_uring_available():
        sl = Sluice(simple_config(up.address), extra_args=["--io", "io_uring"],
                    env={"SLUICE_IO": "epoll"})
        assert io_uring_fds(sl.proc.pid) >= 1
        sl.stop()


@case
def bad_values_are_clear_errors():
    for args, env in ((["--io", "poll"], None), (["--io", ""], None), ([], {"SLUICE_IO": "uring"})):
        r = subprocess.run([SLUICE, "run", "-c", "/nonexistent.json"] + args, capture_output=True,
                           text=True, timeout=30 * SLOW, env=dict(os.environ, **env) if env else None)
        assert r.returncode == 1, r
        assert "--io: expected auto|io_uring|epoll, got" in r.stderr, r.stderr


if __name__ == "__main__":
    run_cases()
