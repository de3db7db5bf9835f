"""The benchmark instruments of BENCHMARKS.md. sluice-bench-relay, the kernel-floor relay: in every
mode it must relay keep-alive HTTP byte for byte (small and large bodies, several connections at
once), close the upstream side when a client leaves, report what it counted on SIGTERM, and
refuse a bad mode. tools/peers-ratios.sh: the bar's ratios from a peers.sh report."""
import hashlib
import http.client
import os
import re
import signal
import subprocess
import tempfile

from harness import SLOW, Upstream, case, header, http_request, run_cases, wait_until

RELAY = os.path.join(os.environ.get("SLUICE_BUILD_DIR", "build"), "tools", "sluice-bench-relay")
MODES = ("epoll", "uring", "uring:4:50", "uring:auto:50", "uring-direct:4:50")
NO_IO_URING = 3  # the relay's exit code when the kernel lacks what the mode needs


class Relay:
    def __init__(self, mode, upstream_port):
        self.dir = tempfile.mkdtemp(prefix="relay-it-")
        self.stats_path = os.path.join(self.dir, "stats")
        self.proc = subprocess.Popen([RELAY, mode, "0", str(upstream_port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, SLUICE_RELAY_STATS=self.stats_path))
        line = self.proc.stdout.readline()
        m = re.match(r"listening 127\.0\.0\.1:(\d+)", line)
        self.port = int(m.group(1)) if m else None
        self.unavailable = False
        if not m:
            self.proc.wait(timeout=10 * SLOW)
            err = self.proc.stderr.read()
            if self.proc.returncode == NO_IO_URING and mode.startswith("uring"):
                print("  %s: io_uring unavailable here (%s): mode not exercised" % (mode, err.strip()))
                self.unavailable = True
            else:
                raise AssertionError("relay %s did not start: %r %r" % (mode, line, err))

    def stop(self):
        """SIGTERM; returns the counts it wrote as a dict."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10 * SLOW) == 0, self.proc.stderr.read()
        with open(self.stats_path) as f:
            text = f.read()
        return {k: v for k, v in re.findall(r"(\w+)=(\S+)", text)}


def relays(up):
    """(mode, Relay) for every mode in MODES, in front of `up`, skipping an io_uring mode this
    kernel cannot run (the relay says so, exit 3)."""
    for mode in MODES:
        relay = Relay(mode, up.port)
        if not relay.unavailable:
            yield mode, relay


def body_ok(status, headers, body, n):
    assert status == 200, status
    assert len(body) == n, (len(body), n)
    assert header(headers, "x-body-sha256") == hashlib.sha256(body).hexdigest()


@case
def every_mode_relays_keep_alive_requests_byte_for_byte():
    up = Upstream()
    for mode, relay in relays(up):
        conns = [http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10 * SLOW) for _ in range(3)]
        sent = 0
        for i in range(40):
            for c in conns:
                n = (16, 4096, 200000)[(i + sent) % 3]  # 200 KB: many reads and sends per response
                status, headers, body = http_request(relay.port, path="/bytes?n=%d" % n, conn=c)
                body_ok(status, headers, body, n)
                sent += 1
        for c in conns:
            c.close()
        counts = relay.stop()
        assert counts["mode"] == mode, counts
        assert int(counts["client_reads"]) >= sent, (counts, sent)
        assert int(counts["waits"]) >= 1 and int(counts["completions"]) >= sent, counts


@case
def a_client_that_leaves_takes_its_upstream_connection_with_it():
    up = Upstream()
    for mode, relay in relays(up):
        conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10 * SLOW)
        body_ok(*http_request(relay.port, path="/bytes?n=100", conn=conn), 100)
        assert up.stats()["connections_open"] >= 1
        conn.close()
        # The stats request itself is one open connection to the upstream, from the test.
        wait_until(lambda: up.stats()["connections_open"] == 1, timeout=5 * SLOW,
                   message="%s: upstream connection closed after the client left" % mode)
        # And the relay still serves new clients afterwards.
        body_ok(*http_request(relay.port, path="/bytes?n=10"), 10)
        relay.stop()


@case
def a_bad_mode_is_refused_with_its_name():
    for mode in ("", "poll", "uring:0:10", "uring:8", "uring:8:0", "uring:8:10x", "uring-directx",
                 "uring:auto:0", "uring:auto:x", "uring:auto"):
        r = subprocess.run([RELAY, mode, "0", "1"], capture_output=True, text=True, timeout=10 * SLOW)
        assert r.returncode == 2, (mode, r.returncode, r.stderr)
        assert "'%s'" % mode in r.stderr, (mode, r.stderr)


PEERS_REPORT = """## peers.sh: body=small (16 B)

### Per run

| run | target | rps | p50 ms | p90 ms | p99 ms | p99.9 ms | proxy CPU s (% of a core) | proxy CPU \u00b5s/req | proxy core |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
| 1 | nginx | 100 | 1.0 | 1.5 | 2.000 | 3.0 | 1.0 (50%) | 20.0 | 20.0 |
| 1 | haproxy | 100 | 1.0 | 1.5 | 4.000 | 3.0 | 1.0 (50%) | 25.0 | 25.0 |
| 1 | sluice | 100 | 1.0 | 1.5 | 1.000 | 3.0 | 1.0 (50%) | 10.0 | 10.0 |
| 2 | nginx | 100 | 1.0 | 1.5 | 2.000 | 3.0 | 1.0 (50%) | 30.0 | 30.0 |
| 2 | haproxy | 100 | 1.0 | 1.5 | 1.000 | 3.0 | 1.0 (50%) | 20.0 | 20.0 |
| 2 | sluice | 100 | 1.0 | 1.5 | 3.000 | 3.0 | 1.0 (50%) | 18.0 | 18.0 |
| 3 | nginx | 100 | 1.0 | 1.5 | 2.000 | 3.0 | 1.0 (50%) | 20.0 | 20.0 |
| 3 | haproxy | 100 | 1.0 | 1.5 | 2.000 | 3.0 | 1.0 (50%) | 20.0 | 20.0 |
| 3 | sluice | 100 | 1.0 | 1.5 | 2.000 | 3.0 | 1.0 (50%) | 16.0 | 16.0 |

### Summary (median over 3 run(s))

| target | rps |
|---|---:|
| 1 | 999 |
"""


@case
def peers_ratios_compares_each_round_with_the_cheaper_peer():
    tool = os.path.join(os.environ.get("SLUICE_SOURCE_DIR", "."), "tools", "peers-ratios.sh")
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "c64.md")
        with open(report, "w") as f:
            f.write(PEERS_REPORT)
        r = subprocess.run([tool, report], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        # CPU: 10/20, 18/20, 16/20; p99: 1/2, 3/1, 2/2. The summary table is not read as rounds.
        assert "round 1: CPU 10.0 / 20.0 = 0.50   p99 1.000 / 2.000 = 0.50" in r.stdout, r.stdout
        assert "round 2: CPU 18.0 / 20.0 = 0.90   p99 3.000 / 1.000 = 3.00" in r.stdout, r.stdout
        assert "round 4" not in r.stdout, r.stdout
        assert "median: CPU 0.80, p99 1.00" in r.stdout, r.stdout
        with open(report, "w") as f:
            f.write("no table here\n")
        r = subprocess.run([tool, report], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "no candidate rounds" in r.stdout, (r.returncode, r.stdout)


if __name__ == "__main__":
    run_cases()
