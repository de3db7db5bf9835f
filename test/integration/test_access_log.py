"""access_log through the real binary: JSON fields, flags, combined and template formats,
when-conditions, flush at shutdown, reopen on SIGUSR1."""
import json
import os
import signal
import socket

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until


def with_log(up, log_cfg, routes=None):
    return simple_config(up.address, routes=routes, filters_after=[{"type": "access_log", "config": log_cfg}])


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [l for l in f.read().split(b"\n") if l]


@case
def threads_are_named_for_top_and_perf():
    # An operator finds each worker, the log writer and the access-log writer by name in
    # top -H / ps -L / perf (per-worker CPU shows how SO_REUSEPORT spread the connections).
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log", "format": "json"}), workers=2)
    assert http_request(sl.port(), "GET", "/")[0] == 200
    task_dir = "/proc/%d/task" % sl.proc.pid

    def names():
        found = set()
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "comm")) as f:
                    found.add(f.read().strip())
            except OSError:
                pass  # a thread that ended meanwhile
        return found

    want = {"sluice-w0", "sluice-w1", "sluice-log", "sluice-alog"}
    assert wait_until(lambda: want <= names()), names()
    assert "sluice-w2" not in names()
    assert sl.stop() == 0


@case
def json_lines_have_the_spec_fields_and_flush_at_shutdown():
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log", "format": "json", "flush_ms": 60000}))
    path = os.path.join(sl.dir, "access.log")
    http_request(sl.port(), "GET", "/ok?q=1", {"User-Agent": "test-agent/1.0 \"quoted\"", "Host": "h.test"})
    http_request(sl.port(), "POST", "/post", body=b"12345")
    assert sl.stop() == 0
    lines = [json.loads(l) for l in read_lines(path)]
    assert len(lines) == 2, lines
    a = lines[0]
    for f in ("time", "request_id", "client", "method", "authority", "path", "protocol", "status", "bytes_in",
              "bytes_out", "duration_ms", "upstream_cluster", "upstream_endpoint", "upstream_ms", "flags", "user_agent"):
        assert f in a, (f, a)
    assert a["method"] == "GET" and a["path"] == "/ok?q=1" and a["status"] == 200 and a["authority"] == "h.test"
    assert a["upstream_cluster"] == "up" and a["upstream_endpoint"] == up.address
    assert a["protocol"] == "HTTP/1.1" and a["flags"] == []
    assert a["user_agent"].startswith("test-agent/1.0 \"quoted\"")
    assert a["time"].endswith("Z") and "T" in a["time"]
    assert lines[1]["bytes_in"] == 5 and lines[1]["method"] == "POST"


@case
def local_replies_and_errors_carry_flags():
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log"}, routes=[{"match": {"prefix": "/x/"}, "prefix_rewrite": "/", "cluster": "up"}]))
    http_request(sl.port(), "GET", "/nowhere")
    http_request(sl.port(), "GET", "/x/reset")
    sl.stop()
    lines = [json.loads(l) for l in read_lines(os.path.join(sl.dir, "access.log"))]
    assert lines[0]["status"] == 404 and "NR" in lines[0]["flags"], lines
    assert lines[1]["status"] == 502 and "UR" in lines[1]["flags"], lines


@case
def disconnects_and_local_replies_are_logged_with_flags():
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log", "flush_ms": 50}, routes=[
        {"match": {"path": "/direct"}, "direct_response": {"status": 200, "body": "here\n"}},
        {"match": {"prefix": "/"}, "cluster": "up"}]))
    path = os.path.join(sl.dir, "access.log")
    http_request(sl.port(), "GET", "/direct")
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5 * SLOW)
    s.sendall(b"GET /delay?ms=30000 HTTP/1.1\r\nHost: h\r\n\r\n")
    # in flight at the upstream (with this /stats request), then the client goes away
    wait_until(lambda: up.stats()["in_flight"] >= 2, message="the slow request at the upstream")
    s.close()
    wait_until(lambda: len(read_lines(path)) == 2, message="both requests logged")
    assert sl.stop() == 0
    lines = [json.loads(l) for l in read_lines(path)]
    by_path = {l["path"]: l for l in lines}
    assert set(by_path) == {"/direct", "/delay?ms=30000"}, lines
    assert by_path["/direct"]["status"] == 200 and "LR" in by_path["/direct"]["flags"], lines
    assert "DC" in by_path["/delay?ms=30000"]["flags"], lines


@case
def combined_and_template_formats():
    up = Upstream()
    sl = Sluice(simple_config(up.address, filters_after=[
        {"type": "access_log", "name": "c", "config": {"path": "combined.log", "format": "combined"}},
        {"type": "access_log", "name": "t", "config": {"path": "t.log", "format": {"template": "%REQ(:method)% %PATH% %STATUS% %RESP(x-upstream-name)% %FLAGS%"}}}]))
    http_request(sl.port(), "GET", "/c", {"Referer": "http://r.test/"})
    sl.stop()
    c = read_lines(os.path.join(sl.dir, "combined.log"))
    assert len(c) == 1 and c[0].startswith(b"127.0.0.1 - - [") and b'"GET /c HTTP/1.1" 200 ' in c[0], c
    assert b'"http://r.test/"' in c[0]
    t = read_lines(os.path.join(sl.dir, "t.log"))
    assert t == [b"GET /c 200 up -"], t


@case
def when_conditions_filter_lines():
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log", "when": {"status_min": 400}}))
    http_request(sl.port(), "GET", "/fine")
    http_request(sl.port(), "GET", "/status/503")
    sl.stop()
    lines = [json.loads(l) for l in read_lines(os.path.join(sl.dir, "access.log"))]
    assert [l["status"] for l in lines] == [503], lines


@case
def sigusr1_reopens_the_file():
    up = Upstream()
    sl = Sluice(with_log(up, {"path": "access.log", "flush_ms": 50}))
    path = os.path.join(sl.dir, "access.log")
    http_request(sl.port(), "GET", "/before")
    wait_until(lambda: len(read_lines(path)) == 1, message="/before logged")
    os.rename(path, path + ".1")
    sl.proc.send_signal(signal.SIGUSR1)
    # The writer reopens (O_CREAT) on the signal: the new file appearing says it is done.
    wait_until(lambda: os.path.exists(path), message="access.log reopened")
    http_request(sl.port(), "GET", "/after")
    sl.stop()
    assert [json.loads(l)["path"] for l in read_lines(path + ".1")] == ["/before"]
    assert [json.loads(l)["path"] for l in read_lines(path)] == ["/after"]


@case
def invalid_access_log_config_is_rejected():
    from harness import run_validate
    code, out = run_validate(with_log(Upstream(), {"path": "/nonexistent-dir/x.log"}))
    assert code == 1 and "/listeners/0/filters/1/config/path" in out, out
    code, out = run_validate(with_log(Upstream(), {"format": {"template": "%NOPE%"}}))
    assert code == 1 and "/listeners/0/filters/1/config/format/template" in out, out
    code, out = run_validate(with_log(Upstream(), {"format": {"template": "%STATUS%\nforged line"}}))
    assert code == 1 and "/listeners/0/filters/1/config/format/template: control character 0x0a" in out, out
    code, out = run_validate(with_log(Upstream(), {"format": {"template": "%STATUS%\t%PATH%"}}))
    assert code == 0, out
    code, out = run_validate(with_log(Upstream(), {"sample": 1}))
    assert code == 1 and "/listeners/0/filters/1/config/sample" in out, out


if __name__ == "__main__":
    run_cases()
