"""Request smuggling battery (RFC 9112 framing) against the real binary, checked at the upstream.

Every case sends raw bytes on a fresh client connection. The upstream is a small recording
origin in this file: it parses what sluice forwards with a strict HTTP/1.1 parser and logs every
complete request (method, target, headers, body) and every framing error it finds. After each
case a sentinel request goes through the proxy and the case waits until the upstream logged it,
so every byte the case made sluice forward has arrived before the log is checked.

Invariants asserted for every case:
  - the upstream's strict parser never finds a framing error in what sluice sends;
  - the upstream never sees more requests than the client sent, and never the smuggled one
    (its target contains "smuggled");
  - when sluice answered the client itself with a 4xx, the upstream saw no complete request;
  - cases that must be rejected get a 4xx and a closed connection; cases that are valid reach
    the upstream exactly once with the body the client meant.
"""
import socket
import threading
import time

from harness import SLOW, Sluice, case, parse_responses, run_cases, simple_config, wait_until


class RecordingUpstream:
    """An HTTP/1.1 origin that logs each request it parses (strictly) and answers 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # dicts: method, target, version, headers [(name, value)], body, raw
        self.errors = []    # framing errors found in what the proxy sent
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _error(self, msg, raw):
        with self.lock:
            self.errors.append("%s: %r" % (msg, raw[:400]))

    def _serve(self, c):
        buf = b""

        def more():
            nonlocal buf
            d = c.recv(65536)
            if not d:
                raise EOFError
            buf += d

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                more()
            ln, _, buf = buf.partition(b"\r\n")
            return ln

        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    more()
                head, _, buf = buf.partition(b"\r\n\r\n")
                raw = head + b"\r\n\r\n"
                if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b"") \
                        or b"\0" in head:
                    return self._error("bare CR/LF or NUL in the head", raw)
                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ")
                if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not parts[1].startswith(b"/"):
                    return self._error("bad request line", raw)
                headers = []
                for ln in lines[1:]:
                    name, sep, value = ln.partition(b":")
                    if not sep or not name or name != name.strip() or b" " in name or b"\t" in name:
                        return self._error("bad header line", raw)
                    headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
                cl = [v for n, v in headers if n == "content-length"]
                te = [v for n, v in headers if n == "transfer-encoding"]
                body = b""
                if te and cl:
                    return self._error("both content-length and transfer-encoding", raw)
                if len(cl) > 1 or len(te) > 1:
                    return self._error("duplicate framing header", raw)
                if te:
                    if te[0] != "chunked":
                        return self._error("transfer-encoding is not chunked", raw)
                    while True:
                        size_line = line()
                        raw += size_line + b"\r\n"
                        size_text = size_line.split(b";")[0]
                        if not size_text or any(ch not in b"0123456789abcdefABCDEF" for ch in size_text):
                            return self._error("bad chunk size", raw)
                        size = int(size_text, 16)
                        if size == 0:
                            while True:  # trailers until the empty line
                                t = line()
                                raw += t + b"\r\n"
                                if t == b"":
                                    break
                            break
                        while len(buf) < size + 2:
                            more()
                        if buf[size:size + 2] != b"\r\n":
                            return self._error("chunk data not followed by CRLF", raw + buf)
                        body += buf[:size]
                        raw += buf[:size + 2]
                        buf = buf[size + 2:]
                elif cl:
                    if not cl[0].isdigit():
                        return self._error("bad content-length", raw)
                    n = int(cl[0])
                    while len(buf) < n:
                        more()
                    body, buf = buf[:n], buf[n:]
                    raw += body
                method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
                with self.lock:
                    self.requests.append({"method": method, "target": target, "headers": headers,
                                          "body": body, "raw": raw})
                reply = ("ok %s %s\n" % (method, target)).encode("latin-1")
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
                          % (len(reply), reply))
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def snapshot(self):
        with self.lock:
            return list(self.requests), list(self.errors)


class Battery:
    def __init__(self, limits=None):
        self.up = RecordingUpstream()
        extra = {"limits": limits} if limits else None
        self.sl = Sluice(simple_config(self.up.address, listener_extra=extra))
        self.port = self.sl.port()
        self.sentinels = 0
        self.failures = []

    def exchange(self, raw, sent):
        """Sends `raw` on a new connection; returns (responses, closed) once sluice closed the
        connection or sent `sent` complete responses (None: wait for the close)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10 * SLOW)
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        closed = False
        deadline = time.time() + 10 * SLOW
        s.settimeout(0.1)
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            if sent is not None and self._complete(data, sent):
                if not 400 <= parse_responses(data)[-1][0] < 600:
                    break
                # a rejection: wait for the close that must follow it
        s.close()
        return (parse_responses(data) if data else []), closed

    @staticmethod
    def _complete(data, sent):
        try:
            rs = parse_responses(data)
        except (AssertionError, ValueError):
            return False
        if len(rs) < sent:
            return False
        st, hs, body = rs[-1]
        cl = [v for k, v in hs if k.lower() == "content-length"]
        return not cl or len(body) == int(cl[0])

    def sentinel(self):
        self.sentinels += 1
        target = "/sentinel-%d" % self.sentinels
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10 * SLOW)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % target.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        wait_until(lambda: any(r["target"] == target for r in self.up.snapshot()[0]),
                   message="upstream logged " + target)

    def run(self, name, raw, expect, body=None, sent=1):
        try:
            return self._run(name, raw, expect, body, sent)
        except AssertionError as e:
            self.failures.append(str(e))
            return [], []

    def check(self):
        """Fails the case with every sub-case that failed."""
        assert not self.failures, "%d sub-case(s) failed:\n" % len(self.failures) + "\n".join(self.failures)

    def _run(self, name, raw, expect, body, sent):
        """expect: "reject" (4xx, connection closed, upstream sees nothing), "accept" (the
        upstream sees exactly `sent` requests, the first with `body`), or "either" (one of the
        two, never anything in between)."""
        before = len(self.up.snapshot()[0])
        responses, closed = self.exchange(raw, None if expect == "reject" else sent)
        self.sentinel()
        reqs, errors = self.up.snapshot()
        new = [r for r in reqs[before:] if not r["target"].startswith("/sentinel-")]
        ctx = "%s: sent %r\n  responses %r\n  upstream saw %r\n  errors %r" % (
            name, raw[:300], [(st, b[:80]) for st, _, b in responses],
            [r["raw"][:300] for r in new], errors)
        assert not errors, ctx
        assert all("smuggled" not in r["target"] for r in new), ctx
        assert len(new) <= sent, ctx
        rejected = [st for st, _, _ in responses if 400 <= st < 600]
        if expect == "either":
            expect = "reject" if rejected else "accept"
        if expect == "reject":
            assert responses and 400 <= responses[-1][0] < 600, ctx
            assert closed, "connection not closed after a rejection: " + ctx
            assert len(new) == len(responses) - 1, ctx  # only the valid ones before the bad one
            assert len(rejected) == 1, ctx
        else:
            assert not rejected, ctx
            assert len(new) == sent and len(responses) == sent, ctx
            if body is not None:
                assert new[0]["body"] == body, ctx
        return responses, new


def battery(limits=None):
    return Battery(limits)


REQ = b"POST /case HTTP/1.1\r\nHost: h\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


@case
def content_length_and_transfer_encoding():
    b = battery()
    b.run("CL+TE", REQ + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
          "reject")
    b.run("TE+CL", REQ + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED,
          "reject")
    b.run("CL+TE identity", REQ + b"Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello", "reject")
    b.check()


@case
def duplicate_content_length():
    b = battery()
    b.run("differing CL", REQ + b"Content-Length: 5\r\nContent-Length: 39\r\n\r\nhello" + SMUGGLED, "reject")
    b.run("same CL twice", REQ + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "either", b"hello")
    b.run("CL list", REQ + b"Content-Length: 5, 5\r\n\r\nhello", "either", b"hello")
    b.run("CL list differing", REQ + b"Content-Length: 5, 39\r\n\r\nhello" + SMUGGLED, "reject")
    b.run("CL plus sign", REQ + b"Content-Length: +5\r\n\r\nhello", "reject")
    b.run("CL hex", REQ + b"Content-Length: 0x5\r\n\r\nhello", "reject")
    b.run("CL negative", REQ + b"Content-Length: -1\r\n\r\n" + SMUGGLED, "reject")
    b.run("CL overflow", REQ + b"Content-Length: 99999999999999999999999\r\n\r\nhello", "reject")
    b.run("CL empty", REQ + b"Content-Length: \r\n\r\n" + SMUGGLED, "reject")
    b.run("CL valid", REQ + b"Content-Length: 5\r\n\r\nhello", "accept", b"hello")
    b.check()


CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


@case
def transfer_encoding_variants():
    b = battery()
    b.run("chunked", REQ + b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY, "accept", b"hello")
    b.run("Chunked case", REQ + b"Transfer-Encoding: Chunked\r\n\r\n" + CHUNKED_BODY, "accept", b"hello")
    b.run("CHUNKED", REQ + b"Transfer-Encoding: CHUNKED\r\n\r\n" + CHUNKED_BODY, "accept", b"hello")
    b.run("OWS around", REQ + b"Transfer-Encoding:   chunked  \r\n\r\n" + CHUNKED_BODY, "accept", b"hello")
    b.run("tab around", REQ + b"Transfer-Encoding:\tchunked\t\r\n\r\n" + CHUNKED_BODY, "either", b"hello")
    b.run("chunked, identity", REQ + b"Transfer-Encoding: chunked, identity\r\n\r\n" + CHUNKED_BODY + SMUGGLED,
          "reject")
    b.run("identity, chunked", REQ + b"Transfer-Encoding: identity, chunked\r\n\r\n" + CHUNKED_BODY, "reject")
    b.run("gzip, chunked", REQ + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + CHUNKED_BODY, "reject")
    b.run("chunked, chunked", REQ + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + CHUNKED_BODY, "reject")
    b.run("TE twice", REQ + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY,
          "reject")
    b.run("TE then identity", REQ + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
          + CHUNKED_BODY, "reject")
    b.run("xchunked", REQ + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_BODY + SMUGGLED, "reject")
    b.run("chunkedx", REQ + b"Transfer-Encoding: chunkedx\r\n\r\n" + CHUNKED_BODY + SMUGGLED, "reject")
    b.run("chunked;ext", REQ + b"Transfer-Encoding: chunked;q=1\r\n\r\n" + CHUNKED_BODY, "reject")
    b.run("obs-fold", REQ + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + CHUNKED_BODY + SMUGGLED, "reject")
    b.run("obs-fold tail", REQ + b"Transfer-Encoding: identity\r\n\tchunked\r\n\r\n" + CHUNKED_BODY, "reject")
    b.run("space before colon", REQ + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED_BODY + SMUGGLED,
          "reject")
    b.run("vertical tab", REQ + b"Transfer-Encoding: \x0bchunked\r\n\r\n" + CHUNKED_BODY + SMUGGLED, "reject")
    b.run("TE on HTTP/1.0", b"POST /case HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          + CHUNKED_BODY + SMUGGLED, "reject")
    b.run("empty TE", REQ + b"Transfer-Encoding: \r\n\r\n" + SMUGGLED, "reject")
    b.check()


@case
def bad_chunk_sizes():
    b = battery()
    te = REQ + b"Transfer-Encoding: chunked\r\n\r\n"
    b.run("hex overflow", te + b"10000000000000001\r\nhello\r\n0\r\n\r\n" + SMUGGLED, "reject")
    b.run("huge size", te + b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("negative", te + b"-5\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("0x prefix", te + b"0x5\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("trailing junk", te + b"5 junk\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("space before CRLF", te + b"5 \r\nhello\r\n0\r\n\r\n", "either", b"hello")
    b.run("empty size", te + b"\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("missing CRLF after data", te + b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED, "reject")
    b.run("data longer than size", te + b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED, "reject")
    b.run("bare LF after size", te + b"5\nhello\r\n0\r\n\r\n" + SMUGGLED, "reject")
    b.run("bare LF after data", te + b"5\r\nhello\n0\r\n\r\n" + SMUGGLED, "reject")
    b.run("ext with NUL", te + b"5;a=\x00\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("ext with CR", te + b"5;a\rb\r\nhello\r\n0\r\n\r\n", "reject")
    b.run("ext with LF", te + b"5;a\nb\r\nhello\r\n0\r\n\r\n" + SMUGGLED, "reject")
    b.run("valid ext", te + b"5;name=value\r\nhello\r\n0\r\n\r\n", "accept", b"hello")
    b.run("valid trailer", te + b"5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n", "accept", b"hello")
    b.run("trailer with bare CR", te + b"5\r\nhello\r\n0\r\nx-t: a\rb\r\n\r\n" + SMUGGLED, "reject")
    b.check()


@case
def bare_lf_and_control_characters():
    b = battery()
    b.run("bare LF everywhere", b"GET /case HTTP/1.1\nHost: h\n\n" + SMUGGLED, "reject")
    b.run("bare LF after request line", b"GET /case HTTP/1.1\nHost: h\r\n\r\n", "reject")
    b.run("bare LF after header", b"GET /case HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", "reject")
    b.run("bare LF end of head", REQ + b"Content-Length: 5\r\n\nhello", "reject")
    b.run("bare CR in value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: a\rContent-Length: 40\r\n\r\n"
          + SMUGGLED, "reject")
    b.run("bare CR line end", b"GET /case HTTP/1.1\r\nHost: h\rX-A: 1\r\n\r\n", "reject")
    b.run("NUL in value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", "reject")
    b.run("NUL in name", b"GET /case HTTP/1.1\r\nHost: h\r\nX-\x00A: a\r\n\r\n", "reject")
    b.run("CR in name", b"GET /case HTTP/1.1\r\nHost: h\r\nX-\rA: a\r\n\r\n", "reject")
    b.run("DEL in value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n", "reject")
    b.run("control in value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", "reject")
    b.run("name with space", b"GET /case HTTP/1.1\r\nHost: h\r\nX A: a\r\n\r\n", "reject")
    b.run("empty name", b"GET /case HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", "reject")
    b.run("no colon", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A a\r\n\r\n", "reject")
    b.run("leading whitespace line", b"GET /case HTTP/1.1\r\n Host: h\r\n\r\n", "reject")
    b.run("obs-text in value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9\r\n\r\n", "accept")
    b.check()


@case
def request_line_oddities():
    b = battery()
    b.run("double space", b"GET  /case HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("double space before version", b"GET /case  HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("tab separator", b"GET\t/case HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("lowercase method", b"get /case HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("unknown method", b"BREW /case HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("HTTP/1.2", b"GET /case HTTP/1.2\r\nHost: h\r\n\r\n", "reject")
    b.run("HTTP/2.0", b"GET /case HTTP/2.0\r\nHost: h\r\n\r\n", "reject")
    b.run("HTTP/0.9", b"GET /case HTTP/0.9\r\nHost: h\r\n\r\n", "reject")
    b.run("simple request", b"GET /case\r\n\r\n", "reject")
    b.run("missing version", b"GET /case \r\nHost: h\r\n\r\n", "reject")
    b.run("lowercase version", b"GET /case http/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("trailing space", b"GET /case HTTP/1.1 \r\nHost: h\r\n\r\n", "reject")
    b.run("space in target", b"GET /ca se HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("NUL in target", b"GET /ca\x00se HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("no host", b"GET /case HTTP/1.1\r\n\r\n", "reject")
    b.run("two hosts", b"GET /case HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", "reject")
    b.run("HTTP/1.0 without host", b"GET /case HTTP/1.0\r\n\r\n", "accept")
    b.run("leading CRLF", b"\r\nGET /case HTTP/1.1\r\nHost: h\r\n\r\n", "accept")
    b.check()


@case
def absolute_form_targets():
    b = battery()
    # RFC 9112 §3.2.2: a server must accept absolute-form; sluice does when the authority is Host.
    _, new = b.run("absolute-form matching host", b"GET http://h/case?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", "accept")
    assert len(new) == 1, new
    for r in new:
        assert r["target"] == "/case?q=1", r  # origin-form towards the upstream
        assert ("host", "h") in r["headers"], r
    b.run("absolute-form host mismatch", b"GET http://other.example/case HTTP/1.1\r\nHost: h\r\n\r\n"
          + SMUGGLED, "reject")
    b.run("absolute-form https", b"GET https://h/case HTTP/1.1\r\nHost: h\r\n\r\n", "accept")
    b.run("absolute-form, Host differs only in case", b"GET http://H/case HTTP/1.1\r\nHost: h\r\n\r\n", "accept")
    b.run("absolute-form without Host", b"GET http://h/case HTTP/1.1\r\n\r\n" + SMUGGLED, "reject")
    b.run("absolute-form with userinfo", b"GET http://u@other/case HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("authority-form on GET", b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.run("CONNECT", b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", "reject")
    b.run("asterisk-form on GET", b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", "reject")
    b.check()


@case
def over_long_request_line_and_headers_get_431():
    b = battery({"max_request_headers_bytes": 4096})
    for name, raw in [
        ("long request line", b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: h\r\n\r\n" + SMUGGLED),
        ("long header value", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: " + b"v" * 8000 + b"\r\n\r\n" + SMUGGLED),
        ("many headers", b"GET /case HTTP/1.1\r\nHost: h\r\n" + b"X-A: 1\r\n" * 1000 + b"\r\n" + SMUGGLED),
        ("long trailers", REQ + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
         + b"X-T: 1\r\n" * 2000 + b"\r\n" + SMUGGLED),
    ]:
        responses, _ = b.run(name, raw, "reject")
        if responses and responses[-1][0] != 431:
            b.failures.append("%s: expected 431, got %r" % (name, responses))
    b.run("just under the limit", b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: " + b"v" * 3000 + b"\r\n\r\n",
          "accept")
    b.check()


@case
def pipelined_tail_after_a_rejected_request_never_reaches_the_upstream():
    b = battery()
    good = b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
    tails = [
        b"GET /case HTTP/1.1\r\nHost: h\r\nX-A: a\x00\r\n\r\n",
        REQ + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        REQ + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /../../etc HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /case HTTP/1.1\r\n\r\n",
    ]
    for i, bad in enumerate(tails):
        b.run("bad then pipelined %d" % i, bad + SMUGGLED + SMUGGLED, "reject")
        responses, new = b.run("good, bad, pipelined %d" % i, good + bad + SMUGGLED, "reject", sent=1)
        assert [r["target"] for r in new] == ["/first"], new
        assert responses[0][0] == 200 and responses[1][0] >= 400, responses
    # Pipelined valid requests all arrive, once each, in order.
    raw = b"".join(b"GET /p%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(5))
    _, new = b.run("five pipelined", raw, "accept", sent=5)
    assert [r["target"] for r in new] == ["/p%d" % i for i in range(5)], new
    # A body that carries what looks like a request is body, not a request.
    body = SMUGGLED
    _, new = b.run("request-shaped body", REQ + b"Content-Length: %d\r\n\r\n" % len(body) + body,
                   "accept", body)
    b.check()


if __name__ == "__main__":
    run_cases()
