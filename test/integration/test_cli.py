"""The command line: version, filters, validate, run exit codes."""
import json
import os
import re
import socket
import subprocess

from harness import SLOW, SLUICE, SOURCE, Sluice, Upstream, case, free_port, run_cases, run_validate, simple_config


def good():
    return simple_config("127.0.0.1:9")


def abi_version():
    """The ABI version api/include/sluice/version.h declares ("1.2")."""
    with open(os.path.join(SOURCE, "api/include/sluice/version.h")) as f:
        text = f.read()
    major = re.search(r"#define SLUICE_ABI_VERSION_MAJOR (\d+)", text).group(1)
    minor = re.search(r"#define SLUICE_ABI_VERSION_MINOR (\d+)", text).group(1)
    return major + "." + minor


@case
def version_and_filters():
    out = subprocess.run([SLUICE, "version"], capture_output=True, text=True, timeout=30 * SLOW).stdout
    assert "C ABI " + abi_version() in out and "router" in out, out
    out = subprocess.run([SLUICE, "filters"], capture_output=True, text=True, timeout=30 * SLOW).stdout
    assert "router" in out and "access_log" in out, out


@case
def validate_accepts_good_configs_and_examples():
    code, out = run_validate(good())
    assert code == 0, out
    ex = os.path.join(SOURCE, "examples")
    for name in sorted(os.listdir(ex)):
        if name.endswith(".json"):
            r = subprocess.run([SLUICE, "validate", "-c", os.path.join(ex, name)], capture_output=True, text=True, timeout=30 * SLOW)
            assert r.returncode == 0, (name, r.stderr)


def expect_error(cfg, pointer, fragment=""):
    code, out = run_validate(cfg)
    assert code == 1, out
    assert "config error: " + pointer + ":" in out, (pointer, out)
    assert fragment in out, (fragment, out)


@case
def validate_reports_json_pointers():
    c = good(); c["listeners"][0]["tiemout_ms"] = 1
    expect_error(c, "/listeners/0/tiemout_ms", "unknown key")
    c = good(); c["listeners"][0]["name"] = 42
    expect_error(c, "/listeners/0/name", "expected a string, got 42")
    c = good(); c["listeners"][0]["filters"][0]["config"]["virtual_hosts"][0]["routes"][0]["cluster"] = "nope"
    expect_error(c, "/listeners/0/filters/0/config/virtual_hosts/0/routes/0/cluster", "unknown cluster")
    c = good(); c["clusters"][0]["endpoints"][0]["address"] = "localhost"
    expect_error(c, "/clusters/0/endpoints/0/address")
    c = good(); c["listeners"][0]["filters"][0]["config"]["virtual_hosts"][0]["routes"][0]["match"] = {"regex": "(unclosed"}
    expect_error(c, "/listeners/0/filters/0/config/virtual_hosts/0/routes/0/match/regex", "regex")
    c = good(); c["clusters"].append(dict(c["clusters"][0]))
    expect_error(c, "/clusters/1/name", "duplicate")
    c = good(); c["listeners"][0]["filters"].append({"type": "no_such_filter"})
    expect_error(c, "/listeners/0/filters/1/type", "unknown filter type")
    c = good(); c["clusters"][0]["circuit_breaker"] = {"retry_budget_percent": 101}
    expect_error(c, "/clusters/0/circuit_breaker/retry_budget_percent", "0..100")
    c = good(); c["clusters"][0]["circuit_breaker"] = {"min_retry_concurrency": -1}
    expect_error(c, "/clusters/0/circuit_breaker/min_retry_concurrency")
    code, out = run_validate("{not json")
    assert code == 1 and "config error" in out, out


@case
def all_errors_are_reported_at_once():
    c = good()
    c["workers"] = "many"
    c["listeners"][0]["address"] = "nowhere"
    c["clusters"][0]["connect_timeout_ms"] = -1
    code, out = run_validate(c)
    assert code == 1
    assert out.count("config error:") >= 3, out


@case
def version_names_the_abi_version():
    r = subprocess.run([SLUICE, "version"], capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), r.stdout
    assert re.search(r"ABI[^\n]*\b" + re.escape(abi_version()) + r"\b", r.stdout), r.stdout


@case
def duplicate_listener_addresses_are_a_config_error():
    port = free_port()
    c = good()
    second = json.loads(json.dumps(c["listeners"][0]))
    second["name"] = "web2"
    c["listeners"][0]["address"] = second["address"] = "127.0.0.1:%d" % port
    c["listeners"].append(second)
    expect_error(c, "/listeners/1/address")
    s = Sluice(c, expect_ready=False)
    assert s.wait_exit(20) == 1, s.stderr_text()


@case
def run_with_bad_config_exits_1_and_port_in_use_exits_2():
    port = free_port()
    c = good(); c["listeners"][0]["bogus"] = True
    c["listeners"][0]["address"] = "127.0.0.1:%d" % port
    s = Sluice(c, expect_ready=False)
    assert s.wait_exit(20) == 1
    text = s.stderr_text()
    assert "config error: /listeners/0/bogus" in text, text
    assert "listening" not in text, "bound a port with an invalid config:\n" + text
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    c = good(); c["listeners"][0]["address"] = "127.0.0.1:%d" % port
    s = Sluice(c, expect_ready=False)
    assert s.wait_exit(20) == 2, s.stderr_text()
    assert "cannot bind" in s.stderr_text()
    blocker.close()


@case
def run_with_a_filter_that_rejects_its_config_exits_1():
    # Filter configs are built after the listeners are bound (bind first): the error still names
    # its pointer, the process exits 1, and nothing is served.
    c = good()
    c["listeners"][0]["filters"].insert(0, {"type": "cors", "config": {"allow_origins": 7}})
    s = Sluice(c, expect_ready=False)
    assert s.wait_exit(20 * SLOW) == 1, s.stderr_text()
    text = s.stderr_text()
    assert "config error: /listeners/0/filters/0/config/allow_origins" in text, text
    assert "ready:" not in text, text


@case
def bad_arguments_exit_1():
    r = subprocess.run([SLUICE, "run"], capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1
    r = subprocess.run([SLUICE, "run", "-c", "/nonexistent.json"], capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1 and "cannot read" in r.stderr
    r = subprocess.run([SLUICE, "frobnicate"], capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1
    r = subprocess.run([SLUICE, "run", "-c", "x.json", "--workers", "lots"], capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1


if __name__ == "__main__":
    run_cases()
