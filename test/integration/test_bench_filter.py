"""`sluice bench-filter`: one filter through the real filter manager and ABI, no network."""
import json
import os
import pty
import re
import select
import subprocess
import tempfile
import time

from harness import SLOW, SLUICE, case, run_cases

MODULE = os.environ.get("SLUICE_TEST_MODULE", "")
SANITIZED = bool(os.environ.get("SLUICE_SANITIZE"))
ROUTER = {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
    {"match": {"prefix": "/api/"}, "cluster": "api"},
    {"match": {"regex": "^/users/[0-9]+$"}, "cluster": "users"},
    {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": "none\n"}}]}]}


def bench(*args, check=True):
    r = subprocess.run([SLUICE, "bench-filter", *args], capture_output=True, text=True, timeout=120 * SLOW)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def bench_json(*args):
    return json.loads(bench(*args, "--json").stdout)


@case
def router_routes_every_request_of_a_jsonl_corpus():
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "c.jsonl")
        with open(corpus, "w") as f:
            f.write(json.dumps({"method": "GET", "path": "/api/x", "headers": {"host": "a"}}) + "\n")
            f.write("\n")
            f.write(json.dumps({"path": "/users/7", "headers": [["host", "a"], ["x-a", "1"]]}) + "\n")
            f.write(json.dumps({"method": "POST", "path": "/nowhere", "body": "abc"}) + "\n")
        out = bench_json("--filter", "router", "--config", json.dumps(ROUTER), "--requests", corpus,
                         "--iterations", "3000", "--batch", "300")
    assert out["filter"] == "router" and out["origin"] == "built-in", out
    assert out["corpus_requests"] == 3, out
    # Two of three requests reach the synthetic upstream (200), one gets the direct response.
    assert out["statuses"] == {"200": 2000, "404": 1000}, out
    for series in ("chain", "baseline"):
        s = out[series]
        assert s["requests"] == 3000 and s["median_ns"] > 0 and s["p99_ns"] >= s["median_ns"], s
        assert s["throughput_rps"] > 0, s
    if SANITIZED:
        assert out["chain"]["allocs_per_request"] is None, out
    else:
        # The data path does not allocate per request in steady state.
        assert out["chain"]["allocs_per_request"] < 0.05, out


@case
def config_from_a_file_and_text_output():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "router.json")
        with open(path, "w") as f:
            json.dump(ROUTER, f)
        r = bench("--filter", "router", "--config", "@" + path, "--iterations", "2000")
    for word in ("filter      router (built-in)", "median ns/req", "p99 ns/req", "chain", "baseline",
                 "filter cost", "responses   200: "):
        assert word in r.stdout, (word, r.stdout)


@case
def a_module_filter_with_timers_is_driven_to_completion():
    # The C test module pauses /async requests on a timer and resumes them; /deny answers 403.
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "c.jsonl")
        with open(corpus, "w") as f:
            f.write(json.dumps({"path": "/async/1"}) + "\n")
            f.write(json.dumps({"path": "/plain"}) + "\n")
        out = bench_json("--filter", "test_async", "--module", MODULE, "--requests", corpus,
                         "--iterations", "40", "--batch", "10")
    assert out["origin"] == os.path.abspath(MODULE), out
    assert out["statuses"].get("200") == 40, out
    if not SANITIZED:
        assert out["filter_allocs_per_request"] > 0.5, out  # the module mallocs its stream state


@case
def a_noop_module_adds_no_allocation():
    noop = os.path.join(os.path.dirname(MODULE), "libsluice_test_noop_filter.so")
    out = bench_json("--filter", "noop", "--module", noop, "--iterations", "5000")
    assert out["statuses"] == {"200": 5000}, out
    assert out["chain"]["requests"] == 5000 and out["baseline"]["requests"] == 5000, out
    if not SANITIZED:
        assert out["filter_allocs_per_request"] < 0.01, out


@case
def bad_arguments_are_clear_errors():
    r = bench("--filter", "no_such", check=False)
    assert r.returncode == 1 and 'unknown filter type "no_such"' in r.stderr, r.stderr
    r = bench("--filter", "router", "--config", '{"virtual_hosts": 3}', check=False)
    assert r.returncode == 1 and "config error: --config/virtual_hosts: expected an array" in r.stderr, r.stderr
    r = bench("--filter", "router", "--config", "{nope", check=False)
    assert r.returncode == 1 and "--config: not valid JSON" in r.stderr, r.stderr
    r = bench("--filter", "router", "--config", "@/no/such/file.json", check=False)
    assert r.returncode == 1 and "cannot read" in r.stderr, r.stderr
    r = bench("--config", "{}", check=False)
    assert r.returncode == 1 and "--filter TYPE is required" in r.stderr, r.stderr
    r = bench("--filter", "router", "--iterations", "0", check=False)
    assert r.returncode == 1 and "--iterations" in r.stderr, r.stderr
    r = bench("--filter", "router", "--bogus", check=False)
    assert r.returncode == 1 and 'unknown argument "--bogus"' in r.stderr, r.stderr
    r = bench("--filter", "test_async", "--module", "/no/such.so", check=False)
    assert r.returncode == 1 and "/no/such.so" in r.stderr, r.stderr
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "c.jsonl")
        with open(corpus, "w") as f:
            f.write('{"path": "/ok"}\n{"path": 5}\n')
        r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--requests", corpus, check=False)
        assert r.returncode == 1 and "c.jsonl:2: /path: expected a string" in r.stderr, r.stderr
        with open(corpus, "w") as f:
            f.write("not json\n")
        r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--requests", corpus, check=False)
        assert r.returncode == 1 and "c.jsonl:1: expected a JSON object" in r.stderr, r.stderr


@case
def json_is_one_line_and_the_table_has_a_filter_row():
    r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--iterations", "2000", "--json")
    assert r.stdout.count("\n") == 1 and r.stdout.endswith("}\n"), r.stdout
    assert json.loads(r.stdout)["chain"]["requests"] == 2000
    assert r.stderr == "", r.stderr  # no progress when stderr is not a terminal
    r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--iterations", "2000")
    lines = r.stdout.splitlines()
    for name in ("chain", "baseline"):
        assert any(re.fullmatch(r"%s\s+\d+\s+\d+\s+\d+\s+(\d+\.\d\d|n/a)" % name, line)
                   for line in lines), r.stdout
    assert any(re.fullmatch(r"filter\s+-?\d+\s+(-?\d+\.\d\d|n/a)", line) for line in lines), r.stdout
    assert r.stderr == "", r.stderr


@case
def progress_on_request_goes_to_stderr_line_by_line():
    r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--iterations", "20000",
              "--batch", "500", "--json", "--progress")
    json.loads(r.stdout)  # stdout stays the result alone
    lines = r.stderr.splitlines()
    assert lines and "\r" not in r.stderr, r.stderr
    assert re.fullmatch(r"bench-filter: 20000/20000 requests per series \(100%\) in \d+\.\d s", lines[-1]), lines
    for line in lines:
        assert re.fullmatch(r"bench-filter: \d+/20000 requests per series \(\d+%\)(, ~\d+ s left| in \d+\.\d s)",
                            line), line
    r = bench("--filter", "router", "--config", json.dumps(ROUTER), "--iterations", "2000", "--no-progress")
    assert r.stderr == "", r.stderr


@case
def progress_on_a_terminal_is_redrawn_in_place_and_cleared():
    """stderr on a pseudo-terminal: the line is redrawn with \\r and cleared before exit."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([SLUICE, "bench-filter", "--filter", "router", "--config", json.dumps(ROUTER),
                             "--iterations", "20000", "--batch", "500", "--json"],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    deadline = time.time() + 120 * SLOW
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    out, _ = proc.communicate(timeout=30 * SLOW)
    os.close(master)
    assert proc.returncode == 0, (proc.returncode, seen)
    json.loads(out)
    assert b"\rbench-filter: 20000/20000 requests per series (100%)" in seen, seen
    assert seen.endswith(b"\r\x1b[K"), seen[-200:]  # the terminal line is left clean
    assert b"\n" not in seen, seen


if __name__ == "__main__":
    run_cases()
