"""Integration test harness: starts the real sluice binary and the test upstream on loopback.

Stdlib only, no pytest. Each test file is a plain script: cases are registered with @case and
run by run_cases(), which prints PASS/FAIL per case and exits 1 if any case failed.
Set CASE=substring to run only the matching cases; a CASE that matches no case is an error
(exit 2), so a typo cannot turn a run into a silent pass.

Environment (set by ctest): SLUICE_BIN, SLUICE_UPSTREAM_BIN, SLUICE_SOURCE_DIR, and
SLUICE_SANITIZE (non-empty under a sanitizer: every timeout is multiplied by SLOW, more under
ThreadSanitizer, which runs the binary several times slower than ASan).

Never sleep a fixed time before asserting: poll the condition with wait_until().

Every sluice started through Sluice/start_sluice is checked when its case ends: if it is still
running it gets SIGTERM and must exit within the timeout; a death by signal or any sanitizer
report on its stderr fails the case.
"""
import atexit
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
_SANITIZE = os.environ.get("SLUICE_SANITIZE", "")
SLOW = 6 if "thread" in _SANITIZE else 3 if _SANITIZE else 1
if "thread" in _SANITIZE and "suppressions=" not in os.environ.get("TSAN_OPTIONS", ""):
    # Third-party libraries only (see the file); every process the tests start inherits it.
    os.environ["TSAN_OPTIONS"] = ":".join(
        filter(None, [os.environ.get("TSAN_OPTIONS"), "suppressions=" + os.path.join(SOURCE, "tools", "tsan.supp")]))
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer",
                     "UndefinedBehaviorSanitizer")
_procs = []      # every child process of the current case (killed when the case ends)
_sluices = []    # every Sluice of the current case (checked when the case ends)
_cases = []


class Upstream:
    """A sluice-test-upstream process on 127.0.0.1 with a free port.
    `delay_ms` delays every answer; a non-zero `status` answers every request but /healthz
    with that status; `extra_args` go to its command line."""

    def __init__(self, name="up", delay_ms=0, status=0, extra_args=()):
        args = [UPSTREAM, "--listen", "127.0.0.1:0", "--name", name]
        if delay_ms:
            args += ["--delay-ms", str(delay_ms)]
        if status:
            args += ["--status", str(status)]
        self.proc = subprocess.Popen(args + list(extra_args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _procs.append(self.proc)
        line = self.proc.stdout.readline()
        m = re.match(r"listening \S+:(\d+)", line)
        if not m:
            raise RuntimeError("upstream did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))
        self.address = "127.0.0.1:%d" % self.port
        self.name = name

    def stats(self):
        """{"requests", "connections_open", "connections_total", "in_flight"} (asked directly)."""
        return json.loads(http_request(self.port, "GET", "/stats")[2])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Sluice:
    """`sluice run -c CONFIG` with stderr captured to a file.

    With expect_ready (default) the constructor waits until every listener printed
    `listening listener=NAME address=IP:PORT`, the admin (if configured) printed
    `admin listening address=IP:PORT`, and the config is live (`ready:`)."""

    def __init__(self, config, extra_args=(), expect_ready=True, workers=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-it-")
        self.config_path = os.path.join(self.dir, "config.json")
        if isinstance(config, dict):
            config = dict(config)
            config.setdefault("shutdown", {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000})
            config.setdefault("workers", 1 if workers is None else workers)
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
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err,
                                     env=dict(os.environ, **env) if env else None)
        _procs.append(self.proc)
        _sluices.append(self)
        self.ports = {}
        self.admin_port = None
        if expect_ready:
            try:
                cfg = config if isinstance(config, dict) else json.loads(text)
            except ValueError:
                cfg = {}
            self._wait_listening(cfg)

    def _scan(self, text):
        for m in re.finditer(r"listening listener=(\S+) address=\S+:(\d+)", text):
            self.ports[m.group(1)] = int(m.group(2))
        m = re.search(r"admin listening address=\S+:(\d+)", text)
        if m:
            self.admin_port = int(m.group(1))

    def _wait_listening(self, cfg):
        want = [l.get("name") for l in cfg.get("listeners", []) if isinstance(l, dict)]
        want_admin = isinstance(cfg.get("admin"), dict)
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            text = self.stderr_text()
            self._scan(text)
            if (all(n in self.ports for n in want) and (self.admin_port or not want_admin)
                    and "ready:" in text):
                return
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited with %s:\n%s" % (self.proc.returncode, text[-4000:]))
            time.sleep(0.02)
        raise AssertionError("sluice did not start listening within %ds:\n%s" % (10 * SLOW, self.stderr_text()[-4000:]))

    def port(self, listener=None):
        if not self.ports:
            self._scan(self.stderr_text())
        if listener is None:
            return next(iter(self.ports.values()))
        return self.ports[listener]

    def stderr_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stdout_text(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def wait_exit(self, timeout=20):
        """Waits for the process to exit by itself; returns its exit code."""
        return self.proc.wait(timeout=timeout * SLOW)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends `sig`, waits for the exit, checks it was clean; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sluice did not exit within %ss of %s:\n%s"
                                     % (timeout * SLOW, sig, self.stderr_text()[-3000:]))
        self.check_clean()
        return self.proc.returncode

    def check_clean(self):
        text = self.stderr_text()
        rc = self.proc.returncode
        assert rc is None or rc >= 0, "sluice died with signal %d:\n%s" % (-rc, text[-3000:])
        for bad in SANITIZER_MARKERS:
            assert bad not in text, "sanitizer report:\n" + text[-6000:]


def start_upstream(name="up", delay_ms=0, status=0, extra_args=()):
    """An upstream with .port and .address; killed when the case ends."""
    return Upstream(name, delay_ms, status, extra_args)


def start_sluice(config, extra_args=(), **kw):
    """`config` is a dict (JSON-encoded, `workers` defaults to 1) or the config text."""
    return Sluice(config, extra_args, **kw)


def simple_config(upstream_address, routes=None, filters_before=(), filters_after=(), listener_extra=None,
                  clusters=None, **top):
    """One listener `web` on 127.0.0.1:0 with a router (all domains) to cluster `up`."""
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
    """One request with http.client; returns (status, [(name, value)...], body bytes).
    Pass `conn` to reuse a keep-alive connection."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return (resp.status, resp.getheaders(), data)
    finally:
        if own:
            conn.close()


def header(headers, name):
    """The first value of `name` in a headers list, or None."""
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def raw_exchange(port, data, timeout=5, read_until_close=True, wait_for=None, read_timeout=None):
    """Sends raw bytes and returns what comes back until close, timeout or `wait_for` seen."""
    if read_timeout is not None:
        timeout = read_timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
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


def recv_until(sock, marker, timeout=5):
    """Reads from `sock` until `marker` is in the data, EOF or timeout; returns the data."""
    sock.settimeout(timeout * SLOW)
    data = b""
    deadline = time.time() + timeout * SLOW
    while marker not in data and time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def parse_responses(data, head_requests=()):
    """Splits raw bytes into HTTP/1.1 responses: a list of (status, [(name, value)...], body).
    Bodies are framed by content-length or chunked (de-chunked here); a response without either
    runs to the end of the data. Interim (1xx) responses are included. `head_requests` holds
    the indexes of final responses that answer HEAD requests (no body). A truncated last
    response is returned as it is."""
    out = []
    final_index = 0
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("incomplete response head: %r" % data[:300])
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise AssertionError("not a status line: %r" % lines[0])
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        names = {k.lower(): v for k, v in headers}
        if status < 200 or status in (204, 304) or final_index in head_requests:
            body = b""
        elif "chunked" in names.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size_line, sep, rest = rest.partition(b"\r\n")
                if not sep:
                    break
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    # trailer fields, then the empty line
                    if rest.startswith(b"\r\n"):
                        rest = rest[2:]
                    else:
                        end = rest.find(b"\r\n\r\n")
                        rest = rest[end + 4:] if end >= 0 else b""
                    break
                body += rest[:size]
                rest = rest[size + 2:]
        elif "content-length" in names:
            n = int(names["content-length"])
            body, rest = rest[:n], rest[n:]
        else:
            body, rest = rest, b""
        out.append((status, headers, body))
        if status >= 200 or status == 101:
            final_index += 1
        if status == 101:
            break
        data = rest
    return out


def is_closed(sock, timeout=3):
    """True when the peer closes (FIN or RST) within `timeout`; any data is discarded."""
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


def wait_until(predicate, timeout=5, message="condition", interval=0.02):
    """Polls `predicate` until it returns a true value and returns that value; fails after
    `timeout` seconds (× SLOW) with an error naming `message` and the last value seen.
    The way to wait for anything a test then asserts on (never a fixed sleep)."""
    deadline = time.time() + timeout * SLOW
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.time() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout * SLOW, message, last))


def promtool_check(text):
    """`promtool check metrics` on an exposition; fails when promtool is missing (it is a test
    dependency: Debian's prometheus package, installed by tools/install-deps.sh)."""
    import shutil
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's prometheus package (tools/install-deps.sh)"
    data = text if isinstance(text, bytes) else text.encode()
    r = subprocess.run([promtool, "check", "metrics"], input=data, capture_output=True)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")


def free_port():
    """A port nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_validate(config):
    """`sluice validate -c FILE` on a dict or text; returns (exit code, stderr + stdout)."""
    d = tempfile.mkdtemp(prefix="sluice-val-")
    p = os.path.join(d, "config.json")
    with open(p, "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    r = subprocess.run([SLUICE, "validate", "-c", p], capture_output=True, text=True, timeout=30 * SLOW)
    return r.returncode, r.stderr + r.stdout


def case(fn):
    _cases.append(fn)
    return fn


def _finish_case():
    """Stops what the case left running; returns the problems found with its sluices."""
    problems = []
    for sl in list(_sluices):
        try:
            sl.stop(timeout=15)
        except AssertionError as e:
            problems.append(str(e))
    _sluices.clear()
    for p in list(_procs):
        if p.poll() is None:
            p.kill()
            p.wait()
    _procs.clear()
    return problems


def _kill_all():
    for p in list(_procs):
        if p.poll() is None:
            p.kill()


atexit.register(_kill_all)


def run_cases():
    failed = 0
    ran = 0
    only = os.environ.get("CASE")
    for fn in _cases:
        if only and only not in fn.__name__:
            continue
        ran += 1
        t0 = time.time()
        error = None
        try:
            fn()
        except Exception:
            error = traceback.format_exc()
            for sl in _sluices:
                error += "--- sluice stderr (tail):\n" + sl.stderr_text()[-2000:]
        problems = _finish_case()
        if problems and error is None:
            error = "at shutdown:\n" + "\n".join(problems)
        if error is None:
            print("PASS %s (%.2fs)" % (fn.__name__, time.time() - t0), flush=True)
        else:
            failed += 1
            print("FAIL %s\n%s" % (fn.__name__, error), flush=True)
    print("%d case(s), %d failed" % (ran, failed), flush=True)
    if ran == 0:
        print("ERROR: no case selected (%d defined%s)" % (len(_cases), ", CASE=%r" % only if only else ""),
              flush=True)
        sys.exit(2)
    sys.exit(1 if failed else 0)
