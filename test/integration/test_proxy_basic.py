"""Core proxying through the real binary: headers, keep-alive, pipelining, bodies both ways,
100-continue, WebSocket upgrade."""
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import time

from harness import (SLOW, Sluice, Upstream, case, header, http_request, is_closed, parse_responses,
                     raw_exchange, recv_until, run_cases, simple_config)


UUID_V4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def start(**kw):
    up = Upstream()
    sl = Sluice(simple_config(up.address, **kw))
    return up, sl


def echo(status_headers_body):
    status, headers, body = status_headers_body
    assert status == 200, (status, body)
    return json.loads(body)


def hdr(doc, name):
    vals = [v for k, v in doc["headers"] if k.lower() == name]
    return vals


@case
def get_through_router_sets_forwarding_headers():
    up, sl = start()
    status, headers, body = http_request(sl.port(), "GET", "/hello?x=1", {"Host": "example.test:8080"})
    doc = json.loads(body)
    assert status == 200
    assert doc["path"] == "/hello?x=1"
    assert hdr(doc, "host") == ["example.test:8080"], doc
    assert hdr(doc, "x-forwarded-for") == ["127.0.0.1"], doc
    assert hdr(doc, "x-forwarded-proto") == ["http"], doc
    assert hdr(doc, "via") == ["1.1 sluice"], doc
    rid = hdr(doc, "x-request-id")
    assert len(rid) == 1 and re.fullmatch(UUID_V4, rid[0]), doc
    assert header(headers, "x-request-id") == rid[0]
    # Generated per request: a keep-alive connection's requests get different ids.
    conn = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10)
    ids = {header(http_request(sl.port(), conn=conn)[1], "x-request-id") for _ in range(20)}
    conn.close()
    assert len(ids) == 20 and all(re.fullmatch(UUID_V4, i) for i in ids), ids
    assert "1.1 sluice" in header(headers, "via")
    assert sl.stop() == 0


@case
def incoming_forwarding_headers_are_appended_and_request_id_trusted():
    up, sl = start()
    doc = echo(http_request(sl.port(), "GET", "/", {"X-Forwarded-For": "10.0.0.1", "Via": "1.0 edge",
                                                     "X-Request-Id": "client-id-1"}))
    assert hdr(doc, "x-forwarded-for") == ["10.0.0.1, 127.0.0.1"], doc
    assert hdr(doc, "via") == ["1.0 edge, 1.1 sluice"], doc
    assert hdr(doc, "x-request-id") == ["client-id-1"], doc
    sl.stop()


@case
def untrusted_request_id_is_replaced():
    up = Upstream()
    sl = Sluice(simple_config(up.address, listener_extra={"request_id": {"header": "x-trace", "trust_incoming": False}}))
    status, headers, body = http_request(sl.port(), "GET", "/", {"X-Trace": "spoofed"})
    doc = json.loads(body)
    assert hdr(doc, "x-trace") != ["spoofed"] and len(hdr(doc, "x-trace")) == 1, doc
    assert header(headers, "x-trace") == hdr(doc, "x-trace")[0]
    sl.stop()


@case
def trusted_incoming_request_id_is_kept_explicitly():
    up = Upstream()
    sl = Sluice(simple_config(up.address, listener_extra={"request_id": {"header": "x-request-id", "trust_incoming": True}}))
    status, headers, body = http_request(sl.port(), "GET", "/", {"X-Request-Id": "abc-123"})
    assert hdr(json.loads(body), "x-request-id") == ["abc-123"], body
    assert header(headers, "x-request-id") == "abc-123", headers
    sl.stop()


@case
def hop_by_hop_headers_are_not_forwarded():
    up, sl = start()
    # Upgrade without "upgrade" in Connection is not an upgrade: just a hop-by-hop header.
    doc = echo(http_request(sl.port(), "GET", "/", {"Connection": "keep-alive, X-Secret", "X-Secret": "1",
                                                     "Keep-Alive": "timeout=5", "Proxy-Connection": "x",
                                                     "TE": "trailers", "Trailer": "x", "Upgrade": "websocket",
                                                     "X-Kept": "yes"}))
    names = [k.lower() for k, v in doc["headers"]]
    for h in ("connection", "x-secret", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        assert h not in names, (h, doc)
    assert "x-kept" in names
    sl.stop()


@case
def hop_by_hop_response_headers_are_not_returned():
    up, sl = start()
    status, headers, body = http_request(
        sl.port(), "GET", "/response-headers?h=Connection:%20x-hop&h=X-Hop:1&h=Keep-Alive:%20timeout=5"
                          "&h=Proxy-Connection:%20keep-alive&h=X-End:%20yes")
    assert status == 200, status
    names = [k.lower() for k, v in headers]
    for h in ("x-hop", "keep-alive", "proxy-connection"):
        assert h not in names, (h, headers)
    assert header(headers, "connection") in (None, "keep-alive"), headers
    assert header(headers, "x-end") == "yes", headers
    sl.stop()


@case
def small_post_reaches_the_upstream():
    up, sl = start()
    doc = echo(http_request(sl.port(), "POST", "/form", {"Content-Type": "text/plain"}, b"hello world"))
    assert doc["method"] == "POST" and doc["path"] == "/form"
    assert doc["body_len"] == 11 and doc["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert hdr(doc, "content-length") == ["11"], doc
    sl.stop()


@case
def keep_alive_reuses_one_client_connection_and_upstream_pool():
    up, sl = start()
    conn = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10)
    for i in range(20):
        status, _, body = http_request(sl.port(), "GET", "/n%d" % i, conn=conn)
        assert status == 200 and json.loads(body)["path"] == "/n%d" % i
    conn.close()
    # 20 requests + this one; the upstream counts requests, and the proxy reused its pool.
    status, _, body = http_request(up.port, "GET", "/count")
    assert int(body) == 21, body
    sl.stop()


@case
def pipelined_requests_are_answered_in_order():
    up, sl = start()
    # The first request is the slowest, so a proxy that answers out of order is caught.
    reqs = (b"GET /delay?ms=300 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /p1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /p2 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    out = raw_exchange(sl.port(), reqs, timeout=5)
    rs = parse_responses(out)
    assert [r[0] for r in rs] == [200] * 4, out[:3000]
    assert rs[0][2] == b"delayed 300\n", rs[0]
    assert [json.loads(r[2])["path"] for r in rs[1:]] == ["/p1", "/p2", "/last"]
    assert json.loads(rs[1][2])["body_len"] == 3
    sl.stop()


@case
def bodyless_responses_keep_the_connection_framed():
    up, sl = start()
    reqs = (b"GET /status/204 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /status/304 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"HEAD /bytes?n=100 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"HEAD /bytes?n=100&chunked=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /end HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    out = raw_exchange(sl.port(), reqs, timeout=5)
    rs = parse_responses(out, head_requests=(2, 3))
    assert [r[0] for r in rs] == [204, 304, 200, 200, 200], out[:3000]
    assert json.loads(rs[4][2])["path"] == "/end", out[:3000]
    sl.stop()


@case
def response_body_is_streamed_not_buffered():
    up, sl = start()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5 * SLOW)
    t0 = time.time()
    s.sendall(b"GET /drip?n=4&ms=500 HTTP/1.1\r\nHost: h\r\n\r\n")
    first = recv_until(s, b"piece 0\n", timeout=5)
    t_first = time.time() - t0
    assert b"piece 0\n" in first, first
    rest = recv_until(s, b"0\r\n\r\n", timeout=5)
    t_all = time.time() - t0
    assert b"piece 3\n" in first + rest, first + rest
    # The upstream needs 1.5 s for all pieces; the first must arrive long before that.
    assert t_first < 1.0 * SLOW and t_all >= 1.4, (t_first, t_all)
    s.close()
    sl.stop()


@case
def large_bodies_stream_both_ways_intact():
    up, sl = start()
    body = os.urandom(10 * 1024 * 1024)
    doc = echo(http_request(sl.port(), "POST", "/upload", {"Content-Type": "application/octet-stream"}, body, timeout=60))
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    for chunked in ("0", "1"):
        status, headers, data = http_request(sl.port(), "GET", "/bytes?n=%d&chunked=%s" % (10 * 1024 * 1024, chunked), timeout=60)
        assert status == 200
        assert len(data) == 10 * 1024 * 1024
        assert hashlib.sha256(data).hexdigest() == header(headers, "x-body-sha256")
    sl.stop()


@case
def chunked_request_body_is_streamed():
    up, sl = start()
    def gen():
        for i in range(50):
            yield b"x" * (1000 + i)
    conn = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10)
    conn.request("POST", "/chunked", body=gen(), encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    expected = b"".join(b"x" * (1000 + i) for i in range(50))
    assert doc["body_len"] == len(expected)
    assert doc["body_sha256"] == hashlib.sha256(expected).hexdigest()
    sl.stop()


@case
def chunked_request_with_extensions_and_trailers():
    up, sl = start()
    body = (b"5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n")
    out = raw_exchange(sl.port(), b"POST /ext HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body +
                       b"GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", timeout=5)
    rs = parse_responses(out)
    assert [r[0] for r in rs] == [200, 200], out[:2000]
    doc = json.loads(rs[0][2])
    assert doc["body_len"] == 11 and doc["body_sha256"] == hashlib.sha256(b"hello world").hexdigest(), doc
    assert json.loads(rs[1][2])["path"] == "/after"
    sl.stop()


@case
def expect_100_continue_gets_interim_response():
    up, sl = start()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5)
    s.sendall(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100 Continue"), first
    s.sendall(b"hello")
    out = b""
    while b'"body_len": 5' not in out:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    assert b"HTTP/1.1 200" in out and b'"body_len": 5' in out, out
    s.close()
    sl.stop()


@case
def head_request_has_no_body():
    up, sl = start()
    out = raw_exchange(sl.port(), b"HEAD /bytes?n=100 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out
    assert b"content-length: 100" in head.lower(), head
    assert rest == b"", rest
    sl.stop()


@case
def websocket_upgrade_is_tunnelled_both_ways():
    up, sl = start()
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", sl.port()), timeout=5)
    s.sendall(("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(4096)
    head, _, rest = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    assert expected in head, head
    assert b"upgrade: websocket" in head.lower()
    payload = os.urandom(200000)
    s.sendall(payload)
    got = rest
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, "tunnel closed early"
        got += chunk
    assert got == payload
    # A second exchange on the same tunnel, then the client's FIN ends it on both sides.
    s.sendall(b"ping")
    assert recv_until(s, b"ping", timeout=5) == b"ping"
    s.shutdown(socket.SHUT_WR)
    assert is_closed(s, timeout=5), "tunnel not closed after the client's FIN"
    s.close()
    sl.stop()


@case
def two_workers_serve_on_one_port():
    up = Upstream()
    sl = Sluice(simple_config(up.address), extra_args=["--workers", "2"])
    for i in range(20):
        status, _, _ = http_request(sl.port(), "GET", "/w%d" % i)
        assert status == 200
    assert sl.stop() == 0


@case
def workers_2_in_the_config_serve_concurrent_clients():
    import threading
    up = Upstream()
    sl = Sluice(simple_config(up.address, workers=2))
    results = []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10 * SLOW)
        for i in range(10):
            status, _, body = http_request(sl.port(), "GET", "/c%d/%d" % (n, i), conn=conn)
            results.append(status == 200 and json.loads(body)["path"] == "/c%d/%d" % (n, i))
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30 * SLOW)
    assert len(results) == 80 and all(results), results
    assert sl.stop() == 0


if __name__ == "__main__":
    run_cases()
