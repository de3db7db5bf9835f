"""SPEC §7 rejections and failure handling, on raw sockets through the real binary."""
import socket
import time

from harness import (SLOW, Sluice, Upstream, case, free_port, http_request, is_closed, parse_responses,
                     raw_exchange, run_cases, simple_config, wait_until)


def start(limits=None, routes=None, clusters=None):
    up = Upstream()
    extra = {"limits": limits} if limits else None
    sl = Sluice(simple_config(up.address, routes=routes, listener_extra=extra, clusters=clusters))
    return up, sl


def expect_status_and_close(port, raw, status):
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    s.sendall(raw)
    data = b""
    s.settimeout(5 * SLOW)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        raise AssertionError("connection not closed after %r: got %r" % (raw[:80], data[:200]))
    s.close()
    assert data.startswith(b"HTTP/1.1 %d" % status), (raw[:120], data[:300])
    return data


BAD_400 = [
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n  folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Space : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-CR: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX(bad): a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX\x01: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"NOT-HTTP\r\n\r\n",
    b"GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /bad%zz HTTP/1.1\r\nHost: h\r\n\r\n",
]


@case
def malformed_requests_get_400_and_close():
    up, sl = start()
    for raw in BAD_400:
        expect_status_and_close(sl.port(), raw, 400)
    # The upstream never saw any of them.
    status, _, body = http_request(up.port, "GET", "/count")
    assert int(body) == 1, body
    # And the proxy still serves.
    assert http_request(sl.port(), "GET", "/ok")[0] == 200
    sl.stop()


@case
def oversized_heads_get_431():
    up, sl = start(limits={"max_request_headers_bytes": 2048})
    expect_status_and_close(sl.port(), b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n", 431)
    expect_status_and_close(sl.port(), b"GET /" + b"a" * 4000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(400))
    expect_status_and_close(sl.port(), b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n", 431)
    assert http_request(sl.port(), "GET", "/ok")[0] == 200
    sl.stop()


@case
def slow_client_gets_408():
    up, sl = start(limits={"header_timeout_ms": 300})
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5 * SLOW)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
    data = b""
    s.settimeout(5 * SLOW)
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data
    assert time.time() - t0 < 3 * SLOW
    sl.stop()


@case
def idle_keep_alive_connection_is_closed():
    up, sl = start(limits={"idle_timeout_ms": 300, "header_timeout_ms": 5000})
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    t0 = time.time()
    assert is_closed(s, timeout=3)
    assert time.time() - t0 < 2.5 * SLOW
    sl.stop()


@case
def body_over_limit_gets_413():
    up, sl = start(limits={"max_request_body_bytes": 1000})
    expect_status_and_close(sl.port(), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000, 413)
    chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"200\r\n" + b"a" * 512 + b"\r\n") * 4 + b"0\r\n\r\n"
    expect_status_and_close(sl.port(), chunked, 413)
    assert http_request(sl.port(), "POST", "/ok", body=b"a" * 999)[0] == 200
    sl.stop()


@case
def upstream_failures_map_to_502_and_504():
    up = Upstream()
    port = free_port()
    cfg = simple_config(up.address, routes=[
        {"match": {"prefix": "/slow/"}, "prefix_rewrite": "/", "cluster": "up", "timeout_ms": 300},
        {"match": {"prefix": "/dead"}, "cluster": "dead"},
        {"match": {"prefix": "/"}, "cluster": "up"}],
        clusters=[{"name": "up", "endpoints": [{"address": up.address}]},
                  {"name": "dead", "endpoints": [{"address": "127.0.0.1:%d" % port}]}])
    sl = Sluice(cfg)
    assert http_request(sl.port(), "GET", "/reset")[0] == 502
    assert http_request(sl.port(), "GET", "/garbage")[0] == 502
    t0 = time.time()
    assert http_request(sl.port(), "GET", "/slow/no-response")[0] == 504
    assert time.time() - t0 < 2 * SLOW
    assert http_request(sl.port(), "GET", "/dead")[0] == 502
    # An upstream that dies mid-body: the client sees a truncated response and a closed connection.
    out = raw_exchange(sl.port(), b"GET /close-mid-body HTTP/1.1\r\nHost: h\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert len(out.partition(b"\r\n\r\n")[2]) < 1000
    assert http_request(sl.port(), "GET", "/fine")[0] == 200
    sl.stop()


@case
def client_going_away_cancels_upstream_and_proxy_keeps_serving():
    up, sl = start()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5)
    s.sendall(b"GET /delay?ms=2000 HTTP/1.1\r\nHost: h\r\n\r\n")
    # in flight at the upstream (with this /stats request), then the client goes away
    wait_until(lambda: up.stats()["in_flight"] >= 2, message="the slow request at the upstream")
    s.close()
    for i in range(5):
        assert http_request(sl.port(), "GET", "/after%d" % i)[0] == 200
    sl.stop()


@case
def client_going_away_closes_the_upstream_request():
    up, sl = start()
    # /no-response holds its upstream connection until the proxy gives up on it; the upstream
    # counts it in `in_flight` (as it counts the /stats request asking).
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5)
    s.sendall(b"GET /no-response HTTP/1.1\r\nHost: h\r\n\r\n")
    wait_until(lambda: up.stats()["in_flight"] == 2, 3, message="the request to reach the upstream")
    s.close()
    wait_until(lambda: up.stats()["in_flight"] == 1, 3, message="the upstream request to be cancelled")
    assert http_request(sl.port(), "GET", "/after")[0] == 200
    sl.stop()


@case
def upstream_sending_its_head_too_slowly_is_504():
    up, sl = start(routes=[{"match": {"prefix": "/"}, "cluster": "up", "timeout_ms": 300}])
    t0 = time.time()
    status, _, _ = http_request(sl.port(), "GET", "/slow-headers?ms=400")
    assert status == 504, status
    assert time.time() - t0 < 2 * SLOW
    assert http_request(sl.port(), "GET", "/fine")[0] == 200
    sl.stop()


@case
def client_connection_close_is_honoured():
    up, sl = start()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5 * SLOW)
    s.sendall(b"GET /one HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    data = b""
    s.settimeout(5 * SLOW)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise AssertionError("connection left open after Connection: close: %r" % data[:300])
    rs = parse_responses(data)
    assert len(rs) == 1 and rs[0][0] == 200, data[:500]
    s.close()
    # HTTP/1.0 without keep-alive closes too.
    out = raw_exchange(sl.port(), b"GET /ten HTTP/1.0\r\nHost: h\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 200") or out.startswith(b"HTTP/1.0 200"), out[:200]
    sl.stop()


@case
def local_replies_keep_the_connection_alive():
    up, sl = start(routes=[{"match": {"path": "/here"}, "direct_response": {"status": 200, "body": "ok"}}])
    out = raw_exchange(sl.port(), b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\nGET /here HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404"), out
    assert b"HTTP/1.1 200" in out and out.endswith(b"ok"), out
    sl.stop()


if __name__ == "__main__":
    run_cases()
