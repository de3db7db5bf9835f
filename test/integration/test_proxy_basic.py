"""Core proxying through the real binary: headers, keep-alive, pipelining, bodies both ways,
100-continue, WebSocket upgrade."""
import base64
import hashlib
import http.client
import json
import os
import socket
import time

from harness import (Sluice, Upstream, case, header, http_request, raw_exchange, run_cases,
                     simple_config)


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
    assert len(rid) == 1 and len(rid[0]) == 36, doc
    assert header(headers, "x-request-id") == rid[0]
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
def hop_by_hop_headers_are_not_forwarded():
    up, sl = start()
    doc = echo(http_request(sl.port(), "GET", "/", {"Connection": "keep-alive, X-Secret", "X-Secret": "1",
                                                     "Keep-Alive": "timeout=5", "Proxy-Connection": "x",
                                                     "TE": "trailers", "Trailer": "x", "X-Kept": "yes"}))
    names = [k.lower() for k, v in doc["headers"]]
    for h in ("connection", "x-secret", "keep-alive", "proxy-connection", "te", "trailer"):
        assert h not in names, (h, doc)
    assert "x-kept" in names
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
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(3))
    out = raw_exchange(sl.port(), reqs + b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", timeout=5)
    positions = [out.find(b'"path": "/p%d"' % i) for i in range(3)] + [out.find(b'"path": "/last"')]
    assert all(p >= 0 for p in positions), out[:2000]
    assert positions == sorted(positions), positions
    assert out.count(b"HTTP/1.1 200") == 4
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
    s.close()
    time.sleep(0.2)
    sl.stop()


@case
def two_workers_serve_on_one_port():
    up = Upstream()
    sl = Sluice(simple_config(up.address), extra_args=["--workers", "2"])
    for i in range(20):
        status, _, _ = http_request(sl.port(), "GET", "/w%d" % i)
        assert status == 200
    assert sl.stop() == 0


if __name__ == "__main__":
    run_cases()
