"""A C filter loaded from a .so through the production loader: timers, resume, HTTP calls to a
cluster, local replies from a callback, metadata, and module config errors."""
import json
import os
import time

from harness import Sluice, Upstream, case, header, http_request, run_cases, run_validate, simple_config, wait_until

MODULE = os.environ.get("SLUICE_TEST_MODULE", "")


def config(up, module_config=None):
    routes = [{"match": {"prefix": "/reverse/"}, "prefix_rewrite": "/", "cluster": "up"},
              {"match": {"prefix": "/"}, "cluster": "up"}]
    return simple_config(up.address, routes=routes, filters_before=[
        {"type": "test_async", "module": MODULE, "config": module_config or {}}],
        filters_after=[{"type": "access_log", "config": {"path": "access.log"}}])


@case
def module_filter_pauses_and_resumes_from_a_timer():
    up = Upstream()
    sl = Sluice(config(up))
    t0 = time.time()
    status, hs, body = http_request(sl.port(), "GET", "/async/x")
    assert status == 200, body
    assert time.time() - t0 >= 0.045
    doc = json.loads(body)
    assert ["x-async", "resumed"] in doc["headers"], doc
    assert header(hs, "x-test-seen") == "yes"
    sl.stop()
    assert "sluice_test_async_requests_total" not in sl.stderr_text()
    line = json.loads(open(os.path.join(sl.dir, "access.log")).read().splitlines()[0])
    assert line["test.seen"] == "yes", line


@case
def module_filter_calls_a_cluster_and_resumes_or_denies():
    up = Upstream()
    sl = Sluice(config(up))
    status, hs, body = http_request(sl.port(), "GET", "/call/y")
    assert status == 200, body
    assert ["x-call-status", "200"] in json.loads(body)["headers"]
    status, hs, body = http_request(sl.port(), "GET", "/deny/z")
    assert status == 403 and body == b"denied\n"
    # many concurrent-ish calls on one connection keep working
    for i in range(20):
        assert http_request(sl.port(), "GET", "/call/%d" % i)[0] == 200
    sl.stop()


@case
def a_finished_call_id_cancels_nothing_when_its_call_object_is_reused():
    # /stale: a first call finishes; a timer later starts a second call (which reuses the first
    # one's call object) and cancels the first id. The second call must still answer.
    up = Upstream()
    sl = Sluice(config(up))
    for _ in range(3):
        status, hs, body = http_request(sl.port(), "GET", "/stale/x", timeout=5)
        assert status == 200, (status, body)
        doc = json.loads(body)
        assert ["x-call-status", "200"] in doc["headers"], doc
    sl.stop()


@case
def a_client_leaving_during_a_paused_stream_is_harmless():
    import socket
    up = Upstream()
    sl = Sluice(config(up))
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", sl.port()))
        s.sendall(b"GET /async/gone HTTP/1.1\r\nHost: h\r\n\r\n")
        s.close()
    # No wait needed: /async/ok is paused by its own 50 ms timer, armed after the gone streams'
    # (libuv fires timers in deadline order), so a gone stream's timer, had it not been
    # cancelled, fires first; one that fires later still runs before stop() checks the exit.
    assert http_request(sl.port(), "GET", "/async/ok")[0] == 200
    sl.stop()


@case
def a_client_leaving_during_an_http_call_cancels_only_its_calls():
    import socket
    up = Upstream()
    sl = Sluice(config(up))
    # A kept connection whose call is in flight while the others' streams end under theirs.
    keep = socket.create_connection(("127.0.0.1", sl.port()))
    keep.settimeout(10)
    keep.sendall(b"GET /slowcall/kept HTTP/1.1\r\nHost: h\r\n\r\n")
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", sl.port()))
        s.sendall(b"GET /slowcall/gone HTTP/1.1\r\nHost: h\r\n\r\n")
        s.close()
    # The gone streams' calls are cancelled with them (their callbacks would touch a finished
    # stream); the kept stream's call still completes and resumes it.
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = keep.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    keep.close()
    status, hs, body = http_request(sl.port(), "GET", "/slowcall/after")
    assert status == 200 and ["x-call-status", "200"] in json.loads(body)["headers"], body
    sl.stop()


@case
def a_local_reply_header_with_a_line_break_is_refused_not_sent():
    import socket
    up = Upstream()
    sl = Sluice(config(up))
    s = socket.create_connection(("127.0.0.1", sl.port()))
    s.settimeout(10)
    s.sendall(b"GET /inject HTTP/1.1\r\nHost: h\r\n\r\n")
    data = b""
    while b"filter error" not in data and b"injected" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 500"), data
    assert b"x-injected" not in data.lower(), data
    wait_until(lambda: "sent a local reply whose header #0 has an empty or invalid name" in sl.stderr_text(),
               message="the filter error line")
    assert http_request(sl.port(), "GET", "/call/x")[0] == 200  # the worker carries on
    sl.stop()


@case
def header_changes_that_would_forge_lines_are_refused_and_counted():
    import re
    import socket
    up = Upstream()
    cfg = config(up)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    sl = Sluice(cfg)
    before = up.stats()["requests"]  # counts itself
    s = socket.create_connection(("127.0.0.1", sl.port()))
    s.settimeout(10)
    s.sendall(b"GET /setinject/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    # The response: status untouched (":status" 2000 refused), no forged line.
    assert head.startswith(b"HTTP/1.1 200 "), data
    assert b"x-injected" not in head.lower(), head
    assert b"x-note" not in head.lower(), head
    # The upstream saw the original request line and headers, plus the one sane header.
    if b"transfer-encoding: chunked" in head.lower():
        whole = b""
        while True:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            whole, body = whole + body[:size], body[size + 2:]
        body = whole
    doc = json.loads(body)
    names = [n.lower() for n, _ in doc["headers"]]
    assert ["x-sane", "kept"] in doc["headers"], doc
    assert not any("injected" in n or n == "x-note" for n in names), doc
    assert doc["path"] == "/setinject/x" and doc["method"] == "GET", doc
    # one request proxied (plus this stats request): no second one smuggled in by :path
    assert up.stats()["requests"] == before + 2, (before, up.stats())
    wait_until(lambda: "called sluice_host_header_set with header \":path\"" in sl.stderr_text(),
               message="the refused :path line")
    assert "called sluice_host_header_add with header \"x-injected: 2??x-a\"" in sl.stderr_text()
    # 5 refused on the request side, 2 on the response side.
    deadline = time.time() + 5
    while not re.search(rb'sluice_filter_errors_total\{filter="[^"]*"\} 7\b',
                        http_request(sl.admin_port, "GET", "/stats/prometheus")[2]):
        assert time.time() < deadline, http_request(sl.admin_port, "GET", "/stats/prometheus")[2]
        time.sleep(0.05)
    assert http_request(sl.port(), "GET", "/call/x")[0] == 200  # the worker carries on
    sl.stop()


@case
def module_body_hooks_buffer_and_rewrite_bodies():
    import hashlib
    up = Upstream()
    sl = Sluice(config(up))
    status, hs, body = http_request(sl.port(), "POST", "/upper/x", body=b"hello, body")
    doc = json.loads(body)
    assert doc["body_len"] == 11 and doc["body_sha256"] == hashlib.sha256(b"HELLO, BODY").hexdigest(), doc
    # chunked request body, buffered whole then rewritten
    conn_body = [b"ab", b"cd", b"ef"]
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10)
    c.request("POST", "/upper/chunks", body=iter(conn_body), encode_chunked=True)
    doc = json.loads(c.getresponse().read())
    assert doc["body_sha256"] == hashlib.sha256(b"ABCDEF").hexdigest(), doc
    # a bodyless request that asks for buffering is not stuck
    assert http_request(sl.port(), "GET", "/upper/nobody")[0] == 200
    # response body buffered and reversed; Content-Length recomputed; chunked upstream too
    for q in ("n=1000", "n=100000&chunked=1"):
        status, hs, body = http_request(sl.port(), "GET", "/reverse/bytes?" + q)
        n = int(q.split("&")[0][2:])
        expected = bytes((ord("a") + i % 26) for i in range(n))[::-1]
        assert status == 200 and body == expected, (q, len(body))
        assert header(hs, "x-reversed") == "1" and header(hs, "content-length") == str(n), hs
    sl.stop()


@case
def module_defines_and_updates_its_own_metric():
    up = Upstream()
    cfg = config(up)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    sl = Sluice(cfg)
    for i in range(3):
        http_request(sl.port(), "GET", "/plain/%d" % i)
    _, _, metrics = http_request(sl.admin_port, "GET", "/metrics")
    assert b'sluice_test_async_requests_total{filter="test_async"} 3' in metrics, metrics
    sl.stop()


@case
def module_errors_name_the_file_and_pointer():
    up = Upstream()
    code, out = run_validate(config(up, {"x": 1}))
    assert code == 1 and "/listeners/0/filters/0/config/x: x is not accepted" in out, out
    c = config(up)
    c["listeners"][0]["filters"][0]["module"] = "/etc/hostname"
    code, out = run_validate(c)
    assert code == 1 and "/listeners/0/filters/0/module" in out and "/etc/hostname" in out, out
    c["listeners"][0]["filters"][0]["module"] = "/nonexistent/lib.so"
    code, out = run_validate(c)
    assert code == 1 and "/listeners/0/filters/0/module" in out, out
    c = config(up)
    c["listeners"][0]["filters"][0]["type"] = "not_in_module"
    code, out = run_validate(c)
    assert code == 1 and "has no filter type" in out and "test_async" in out, out


@case
def a_new_file_at_the_same_path_is_loaded_on_reload_and_the_old_one_unmapped():
    import shutil
    import signal
    import tempfile
    up = Upstream()
    d = tempfile.mkdtemp(prefix="sluice-mod-")
    path = os.path.join(d, "libmine.so")
    shutil.copy(MODULE, path)
    cfg = simple_config(up.address, filters_before=[{"type": "test_async", "module": path}])
    sl = Sluice(cfg)
    port = sl.port()
    assert http_request(port, "GET", "/deny/x")[0] == 403  # the C test module denies /deny

    def mapped():
        with open("/proc/%d/maps" % sl.proc.pid) as f:
            return [l.split(None, 5)[-1].strip() for l in f if "libmine.so" in l]

    assert mapped() and all(m == path for m in mapped()), mapped()
    # A new build is renamed into place: the no-op module, which lets /deny through.
    noop = os.path.join(os.path.dirname(MODULE), "libsluice_test_noop_filter.so")
    shutil.copy(noop, path + ".new")
    os.rename(path + ".new", path)
    cfg["listeners"][0]["address"] = "127.0.0.1:%d" % port
    cfg["listeners"][0]["filters"][0]["type"] = "noop"
    cfg.setdefault("workers", 1)
    cfg.setdefault("shutdown", {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000})
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)
    sl.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "config generation 2 is live" not in sl.stderr_text() and time.time() < deadline:
        time.sleep(0.05)
    wait_until(lambda: "config generation 2 is live" in sl.stderr_text(), message='log line: "config generation 2 is live" in sl.stderr_text()')  # log lines are written by a writer thread
    assert http_request(port, "GET", "/deny/x")[0] == 200
    wait_until(lambda: sl.stderr_text().count("] loaded module " + path) == 2, message='log line: sl.stderr_text().count("] loaded module " + path) == 2')  # log lines are written by a writer thread
    # Nothing uses the old file any more: it is unmapped; the new one is mapped.
    deadline = time.time() + 5
    while any("(deleted)" in m for m in mapped()) and time.time() < deadline:
        time.sleep(0.05)
    assert mapped() and all(m == path for m in mapped()), mapped()
    wait_until(lambda: "unloaded module " + path in sl.stderr_text(), message='log line: "unloaded module " + path in sl.stderr_text()')  # log lines are written by a writer thread
    sl.stop()


@case
def module_trailer_hooks_see_and_change_trailers():
    from harness import raw_exchange
    up = Upstream()
    sl = Sluice(config(up))
    port = sl.port()
    # A chunked request with a trailer: the hook copies it to metadata and adds one upstream.
    req = (b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
           b"5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n")
    out = raw_exchange(port, req)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out[:300]
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    echo = json.loads(body)
    assert ["x-checksum", "abc123"] in echo["trailers"], echo["trailers"]
    assert ["x-trailer-seen", "yes"] in echo["trailers"], echo["trailers"]
    # Response trailers from the upstream pass through the response trailers hook.
    out = raw_exchange(port, b"GET /trailers HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert b"with trailers" in out, out
    tail = out.rsplit(b"\r\n0\r\n", 1)[1].lower()
    assert b"x-upstream-trailer: 1" in tail and b"x-filter-trailer: yes" in tail, out
    sl.stop()
    line = json.loads(open(os.path.join(sl.dir, "access.log")).read().splitlines()[0])
    assert line["test.checksum"] == "abc123", line


def api_module(name):
    return os.path.join(os.path.dirname(MODULE), "lib%s.so" % name)


@case
def a_module_built_against_the_1_0_headers_loads_and_works():
    old = api_module("sluice_test_async_filter_v1_0")
    up = Upstream()
    cfg = config(up)
    cfg["listeners"][0]["filters"][0]["module"] = old
    sl = Sluice(cfg)
    wait_until(lambda: "loaded module %s (test_async, C ABI 1.0)" % old in sl.stderr_text(), message='log line: "loaded module %s (test_async, C ABI 1.0)" % old in sl.stder')  # log lines are written by a writer thread
    port = sl.port()
    status, hs, body = http_request(port, "GET", "/async/x")
    assert status == 200 and ["x-async", "resumed"] in json.loads(body)["headers"], body
    assert http_request(port, "GET", "/deny/x")[0] == 403
    sl.stop()


@case
def modules_the_loader_refuses_say_why():
    up = Upstream()
    expected = {
        1: ["built for C ABI 2.", "major versions differ"],
        2: ["requires C ABI 1.", "newer than this sluice's ABI 1."],
        3: ["lacks the required hook sluice_on_stream_new"],
        4: ["does not export the entry symbol sluice_module_init"],
    }
    for kind, words in expected.items():
        path = api_module("sluice_test_bad_module_%d" % kind)
        c = config(up)
        c["listeners"][0]["filters"][0].update({"type": "bad", "module": path})
        code, out = run_validate(c)
        assert code == 1 and "/listeners/0/filters/0/module" in out and path in out, (kind, out)
        for w in words:
            assert w in out, (kind, w, out)


@case
def a_broken_module_is_contained_or_named():
    import signal
    up = Upstream()
    path = api_module("sluice_test_bad_module_5")
    cfg = simple_config(up.address, filters_before=[{"type": "bad", "name": "shaky", "module": path}],
                        admin={"address": "127.0.0.1:0"})
    sl = Sluice(cfg)
    port = sl.port()
    assert http_request(port, "GET", "/fine")[0] == 200
    # An invalid hook status: the stream ends with 500, the log names the filter, a counter counts it.
    status, _, body = http_request(port, "GET", "/invalid")
    assert status == 500 and body == b"filter error\n", (status, body)
    wait_until(lambda: 'filter "shaky" (bad) returned an invalid status 7' in sl.stderr_text(), message='log line: \'filter "shaky" (bad) returned an invalid status 7\' in sl.st')  # log lines are written by a writer thread
    assert http_request(port, "GET", "/fine")[0] == 200
    # A local reply with a status that is not a final one: 500 instead of a hanging request.
    status, _, body = http_request(port, "GET", "/badreply")
    assert status == 500 and body == b"filter error\n", (status, body)
    wait_until(lambda: 'filter "shaky" sent a local reply with status 42' in sl.stderr_text(), message='log line: \'filter "shaky" sent a local reply with status 42\' in sl.std')  # log lines are written by a writer thread
    # A stream call from a thread of the module's own is refused (and logged), not raced.
    status, _, _ = http_request(port, "GET", "/off-thread")
    assert status == 200, status
    wait_until(lambda: "sluice_host_resume was called from a thread that is not the worker's" in sl.stderr_text(), message='log line: "sluice_host_resume was called from a thread that is not the')  # log lines are written by a writer thread
    deadline = time.time() + 5
    while b'sluice_filter_errors_total{filter="shaky"} 2' not in http_request(sl.admin_port, "GET", "/stats/prometheus")[2]:
        assert time.time() < deadline, "sluice_filter_errors_total did not count the broken stream"
        time.sleep(0.05)
    if os.environ.get("SLUICE_SANITIZE"):
        sl.stop()
        return  # AddressSanitizer reports crashes itself (with the module's frames)
    # A crash is the module's fault, but the log names it.
    try:
        http_request(port, "GET", "/crash")
    except Exception:  # noqa: BLE001 - the connection dies with the process
        pass
    assert sl.proc.wait(timeout=10) == -signal.SIGSEGV
    import harness
    harness._sluices.remove(sl)  # this one was meant to die
    err = sl.stderr_text()
    fatal = 'sluice: fatal SIGSEGV in filter "shaky" (type bad, %s)' % path
    assert fatal in err, err[-2000:]
    # What the filter logged right before the crash is written (from the log queue) before the report.
    assert "] about to crash\n" in err and err.index("] about to crash\n") < err.index(fatal), err[-2000:]
    # A crash in a callback the host delivers (here a stream timer) is named the same way: the
    # callback runs as the filter that registered it.
    sl = Sluice(cfg)
    try:
        http_request(sl.port(), "GET", "/crash-later")
    except Exception:  # noqa: BLE001 - the connection dies with the process
        pass
    assert sl.proc.wait(timeout=10) == -signal.SIGSEGV
    harness._sluices.remove(sl)
    assert 'sluice: fatal SIGSEGV in filter "shaky" (type bad, %s)' % path in sl.stderr_text(), sl.stderr_text()[-2000:]


if __name__ == "__main__":
    run_cases()
