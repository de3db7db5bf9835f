"""Integration test harness: starts the real sluice binary and the test upstream on loopback.

Stdlib only. Each test file is a plain script: cases are registered with @case and run by
run_cases(), which exits 1 if any case failed.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SLUICE = os.environ.get("SLUICE_BIN", "build/sluice")
UPSTREAM = os.environ.get("SLUICE_UPSTREAM_BIN", "build/tools/sluice-test-upstream")
SOURCE = os.environ.get("SLUICE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SLOW = 3 if os.environ.get("SLUICE_SANITIZE") else 1
_procs = []
_cases = []


class Upstream:
    def __init__(self, name="up", delay_ms=0):
        self.proc = subprocess.Popen([UPSTREAM, "--listen", "127.0.0.1:0", "--name", name,
                                      "--delay-ms", str(delay_ms)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _procs.append(self.proc)
        line = self.proc.stdout.readline()
        m = re.match(r"listening 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("upstream did not start: %r" % line)
        self.port = int(m.group(1))
        self.address = "127.0.0.1:%d" % self.port
        self.name = name

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Sluice:
    def __init__(self, config, extra_args=(), expect_ready=True, workers=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-it-")
        self.config_path = os.path.join(self.dir, "config.json")
        if isinstance(config, dict):
            config = dict(config)
            config.setdefault("shutdown", {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000})
            config.setdefault("workers", 1)
            text = json.dumps(config)
        else:
            text = config
        with open(self.config_path, "w") as f:
            f.write(text)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self._err = open(self.stderr_path, "w")
        self._out = open(self.stdout_path, "w")
        args = [SLUICE, "run", "-c", self.config_path] + list(extra_args)
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err)
        _procs.append(self.proc)
        self.ports = {}
        self.admin_port = None
        if expect_ready:
            self._wait_listening(config if isinstance(config, dict) else json.loads(text))

    def _wait_listening(self, cfg):
        want = [l["name"] for l in cfg.get("listeners", [])]
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            text = self.stderr_text()
            for m in re.finditer(r"listening listener=(\S+) address=\S+:(\d+)", text):
                self.ports[m.group(1)] = int(m.group(2))
            m = re.search(r"admin listening address=\S+:(\d+)", text)
            if m:
                self.admin_port = int(m.group(1))
            if all(n in self.ports for n in want) and "ready:" in text:
                return
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited with %s:\n%s" % (self.proc.returncode, text))
            time.sleep(0.02)
        raise AssertionError("sluice did not start listening:\n" + self.stderr_text())

    def port(self, listener=None):
        if listener is None:
            return next(iter(self.ports.values()))
        return self.ports[listener]

    def stderr_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stdout_text(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sluice did not exit within %ss of %s" % (timeout, sig))
        self.check_clean()
        return self.proc.returncode

    def check_clean(self):
        text = self.stderr_text()
        assert self.proc.returncode is None or self.proc.returncode >= 0, \
            "sluice died with signal %d:\n%s" % (-self.proc.returncode, text[-3000:])
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in text, "sanitizer report:\n" + text[-6000:]


def simple_config(upstream_address, routes=None, filters_before=(), filters_after=(), listener_extra=None,
                  clusters=None, **top):
    routes = routes if routes is not None else [{"match": {"prefix": "/"}, "cluster": "up"}]
    listener = {"name": "web", "address": "127.0.0.1:0",
                "filters": list(filters_before) + [
                    {"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}}
                ] + list(filters_after)}
    if listener_extra:
        listener.update(listener_extra)
    cfg = {"listeners": [listener],
           "clusters": clusters if clusters is not None else [{"name": "up", "endpoints": [{"address": upstream_address}]}]}
    cfg.update(top)
    return cfg


def http_request(port, method="GET", path="/", headers=None, body=None, timeout=10, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    result = (resp.status, resp.getheaders(), data)
    if own:
        conn.close()
    return result


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def raw_exchange(port, data, timeout=5, read_until_close=True, wait_for=None):
    """Sends raw bytes and returns what comes back until close, timeout or `wait_for` seen."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    s.sendall(data)
    out = b""
    deadline = time.time() + timeout * SLOW
    s.settimeout(0.2)
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if wait_for is not None and wait_for in out:
                break
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
        if wait_for is not None and wait_for in out and not read_until_close:
            break
    s.close()
    return out


def is_closed(sock, timeout=3):
    sock.settimeout(timeout * SLOW)
    try:
        data = sock.recv(65536)
        while data:
            data = sock.recv(65536)
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def run_validate(config):
    d = tempfile.mkdtemp(prefix="sluice-val-")
    p = os.path.join(d, "config.json")
    with open(p, "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    r = subprocess.run([SLUICE, "validate", "-c", p], capture_output=True, text=True, timeout=30 * SLOW)
    return r.returncode, r.stderr + r.stdout


def case(fn):
    _cases.append(fn)
    return fn


def run_cases():
    failed = 0
    only = os.environ.get("CASE")
    for fn in _cases:
        if only and only not in fn.__name__:
            continue
        t0 = time.time()
        try:
            fn()
            print("PASS %s (%.2fs)" % (fn.__name__, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
        finally:
            for p in list(_procs):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            _procs.clear()
    print("%d case(s), %d failed" % (len(_cases), failed))
    sys.exit(1 if failed else 0)
