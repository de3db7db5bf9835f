"""The filter author's kit through the real binary: a C filter scaffolded by tools/new-filter and
built with a C compiler only, two instances of it in one chain, the metric namespace the core
reserves, the minimum ABI minor a C module declares, local reply details in the access and
debug logs, and a check phase (validate, a failed load) that creates no file."""
import json
import os
import re
import subprocess
import tempfile

from harness import (Sluice, Upstream, case, http_request, raw_exchange, run_cases, run_validate,
                     simple_config, wait_until)

SRC = os.environ.get("SLUICE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE = os.environ.get("SLUICE_TEST_MODULE", "")
CC = os.environ.get("CC", "cc")


def api_module(name):
    return os.path.join(os.path.dirname(MODULE), "lib%s.so" % name)


def scaffold_c(name, edit=None):
    """tools/new-filter NAME --lang c, optionally edited, built as a module with the C compiler
    alone (no CMake, no C++). Returns the .so path."""
    d = tempfile.mkdtemp(prefix="sluice-kit-")
    subprocess.run([os.path.join(SRC, "tools", "new-filter"), name, "--lang", "c", "--dir", d],
                   check=True, capture_output=True)
    src = os.path.join(d, name, "src", name + ".c")
    if edit:
        with open(src) as f:
            text = f.read()
        with open(src, "w") as f:
            f.write(edit(text))
    so = os.path.join(d, "lib%s.so" % name)
    r = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared",
                        "-fvisibility=hidden", "-I", os.path.join(SRC, "api", "include"), src, "-o", so],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return so


@case
def a_scaffolded_c_filter_twice_in_one_chain_keeps_config_and_metrics_per_instance():
    so = scaffold_c("kit_twice")
    up = Upstream()
    cfg = simple_config(up.address, admin={"address": "127.0.0.1:0"}, filters_before=[
        {"type": "kit_twice", "module": so, "name": "first", "config": {}},
        {"type": "kit_twice", "module": so, "name": "second", "config": {"value": "two"}}])
    sl = Sluice(cfg)
    for i in range(3):
        status, hs, _ = http_request(sl.port(), "GET", "/x/%d" % i)
        assert status == 200
        values = sorted(v for k, v in hs if k.lower() == "x-kit-twice")
        assert values == ["hello", "two"], hs  # each instance adds its own configured value
    assert http_request(sl.port(), "GET", "/fourth")[0] == 200
    _, _, metrics = http_request(sl.admin_port, "GET", "/stats/prometheus")
    text = metrics.decode()
    assert 'sluice_kit_twice_requests_total{filter="first"} 4' in text, text
    assert 'sluice_kit_twice_requests_total{filter="second"} 4' in text, text
    sl.stop()
    # A bad value is refused with the instance's pointer.
    cfg["listeners"][0]["filters"][1]["config"] = {"value": 42}
    code, out = run_validate(cfg)
    assert code == 1 and "/listeners/0/filters/1/config/value: expected a string, got 42" in out, out


@case
def a_module_metric_under_a_core_name_or_prefix_is_refused_at_load():
    up = Upstream()
    for family, words in (("sluice_downstream_requests_total", "is a core metric of sluice"),
                          ("sluice_filter_errors_total", "is a core metric of sluice"),
                          ("sluice_upstream_kit_total", 'is in the namespace "sluice_upstream_"')):
        so = scaffold_c("kit_clash", edit=lambda t: t.replace("sluice_kit_clash_requests_total", family))
        cfg = simple_config(up.address, filters_before=[{"type": "kit_clash", "module": so, "config": {}}])
        code, out = run_validate(cfg)
        assert code == 1, out
        assert ('config error: /listeners/0/filters/0/config: metric "%s" %s' % (family, words)) in out, out
        # `run` refuses it the same way, before anything is served.
        sl = Sluice(cfg, expect_ready=False)
        assert sl.wait_exit() == 1
        wait_until(lambda: 'metric "%s"' % family in sl.stderr_text(), message='log line: \'metric "%s"\' % family in sl.stderr_text()')  # log lines are written by a writer thread


@case
def a_c_module_declares_the_oldest_abi_minor_it_needs():
    up = Upstream()
    noop = api_module("sluice_test_noop_filter")  # SLUICE_MODULE_REQUIRES_MINOR 0
    sl = Sluice(simple_config(up.address, filters_before=[{"type": "noop", "module": noop, "config": {}}]))
    wait_until(lambda: "loaded module %s (noop, C ABI 1.0)" % noop in sl.stderr_text(), message='log line: "loaded module %s (noop, C ABI 1.0)" % noop in sl.stderr_tex')  # log lines are written by a writer thread
    assert http_request(sl.port(), "GET", "/")[0] == 200
    sl.stop()
    # One that requires a newer minor than this sluice is refused, naming both versions.
    bad = api_module("sluice_test_bad_module_2")
    code, out = run_validate(simple_config(up.address, filters_before=[
        {"type": "bad", "module": bad, "config": {}}]))
    assert code == 1 and "/listeners/0/filters/0/module" in out, out
    assert re.search(r"requires C ABI 1\.\d+ \(SLUICE_MODULE_REQUIRES_MINOR\), newer than this "
                     r"sluice's ABI 1\.\d+", out), out


@case
def local_reply_details_reach_the_access_log_and_the_debug_log():
    up = Upstream()
    cfg = simple_config(up.address, filters_before=[
        {"type": "test_async", "module": MODULE, "config": {}},
        {"type": "bad", "name": "shaky", "module": api_module("sluice_test_bad_module_5"), "config": {}}],
        filters_after=[{"type": "access_log", "name": "json", "config": {"path": "access.log"}},
                       {"type": "access_log", "name": "tpl", "config": {
                           "path": "tpl.log", "format": {"template": "%STATUS% [%RESPONSE_DETAILS%]"}}}])
    sl = Sluice(cfg, extra_args=["--log-level", "debug"])
    port = sl.port()
    status, _, body = http_request(port, "GET", "/deny/z")  # the local reply comes from a callback
    assert status == 403 and body == b"denied\n"
    assert http_request(port, "GET", "/fine")[0] == 200
    # A 1xx local reply is refused: 500, logged, and the access log says why.
    status, _, body = http_request(port, "GET", "/reply-1xx")
    assert status == 500 and body == b"filter error\n", (status, body)
    wait_until(lambda: 'filter "shaky" sent a local reply with status 103' in sl.stderr_text(),
               message="the refused 1xx local reply is logged")
    wait_until(lambda: "local reply 403: denied_by_test" in sl.stderr_text(),
               message="the details on the debug log")
    sl.stop()
    lines = [json.loads(l) for l in open(os.path.join(sl.dir, "access.log")).read().splitlines()]
    by_path = {l["path"]: l for l in lines}
    assert by_path["/deny/z"]["response_details"] == "denied_by_test", by_path["/deny/z"]
    assert "LR" in by_path["/deny/z"]["flags"]
    assert "response_details" not in by_path["/fine"], by_path["/fine"]
    assert by_path["/reply-1xx"]["response_details"] == "invalid_local_reply_status_103"
    tpl = open(os.path.join(sl.dir, "tpl.log")).read().splitlines()
    assert tpl == ["403 [denied_by_test]", "200 [-]", "500 [invalid_local_reply_status_103]"], tpl


@case
def status_451_goes_out_with_its_registered_reason_phrase():
    up = Upstream()
    sl = Sluice(simple_config(up.address, routes=[
        {"match": {"prefix": "/"}, "direct_response": {"status": 451, "body": "gone\n"}}]))
    out = raw_exchange(sl.port(), b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n"), out[:200]
    sl.stop()


@case
def validate_and_a_failed_load_create_no_access_log_file():
    up = Upstream()
    d = tempfile.mkdtemp(prefix="sluice-check-")
    path = os.path.join(d, "new.log")
    good = simple_config(up.address, filters_after=[{"type": "access_log", "config": {"path": path}}])
    code, out = run_validate(good)
    assert code == 0, out
    assert not os.path.exists(path), "sluice validate created the access log"
    # A missing folder is still reported at validate (the check phase checks the path).
    bad_dir = simple_config(up.address, filters_after=[
        {"type": "access_log", "config": {"path": os.path.join(d, "no-such-dir", "x.log")}}])
    code, out = run_validate(bad_dir)
    assert code == 1 and "/listeners/0/filters/1/config/path" in out, out
    # A load that fails in a later filter leaves nothing behind either, at start and at reload.
    failing = simple_config(up.address, filters_after=[
        {"type": "access_log", "config": {"path": path}},
        {"type": "cors", "config": {"no_such_key": 1}}])
    code, out = run_validate(failing)
    assert code == 1 and not os.path.exists(path), out
    sl = Sluice(failing, expect_ready=False)
    assert sl.wait_exit() == 1
    assert not os.path.exists(path), "a config that failed to load created the access log"
    sl = Sluice(simple_config(up.address, admin={"address": "127.0.0.1:0"}))
    with open(sl.config_path, "w") as f:
        json.dump(dict(failing, admin={"address": "127.0.0.1:0"}), f)
    status, _, body = http_request(sl.admin_port, "POST", "/reload")
    assert status == 400, body
    assert not os.path.exists(path), "a reload that failed created the access log"
    # The same config once it goes live: the file is created at start.
    with open(sl.config_path, "w") as f:
        json.dump(dict(good, admin={"address": "127.0.0.1:0"}), f)
    status, _, body = http_request(sl.admin_port, "POST", "/reload")
    assert status == 200, body
    assert os.path.exists(path)
    sl.stop()


@case
def validate_starts_no_writer_thread():
    # Many access logs: at validate none may start its writer thread. The process's thread count
    # is sampled through /proc while `sluice validate` runs (it reads a large config, so it
    # lives long enough to be seen; each sample is compared with what a writer per log would add).
    up = Upstream()
    d = tempfile.mkdtemp(prefix="sluice-threads-")
    logs = [{"type": "access_log", "name": "log%d" % i, "config": {"path": os.path.join(d, "%d.log" % i)}}
            for i in range(64)]
    cfg = simple_config(up.address, filters_after=logs)
    p = os.path.join(d, "config.json")
    with open(p, "w") as f:
        json.dump(cfg, f)
    from harness import SLUICE
    proc = subprocess.Popen([SLUICE, "validate", "-c", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    most = 0
    while proc.poll() is None:
        try:
            most = max(most, len(os.listdir("/proc/%d/task" % proc.pid)))
        except OSError:
            break
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert most < 32, "validate ran %d threads (64 access logs)" % most
    assert os.listdir(d) == ["config.json"], os.listdir(d)


if __name__ == "__main__":
    run_cases()
