"""The example extensions (extensions/*), each loaded from its .so through the production
loader by the real binary: header_rewrite (C), ip_allowlist, ext_authz and body_transform
(C++ SDK). The modules are found in $SLUICE_BUILD_DIR/extensions (or $SLUICE_EXTENSIONS_DIR)."""
import hashlib
import http.client
import json
import os

from harness import (SLOW, SOURCE, Sluice, Upstream, case, free_port, header, http_request,
                     run_cases, run_validate, simple_config)

EXT_DIR = os.environ.get("SLUICE_EXTENSIONS_DIR") or os.path.join(
    os.environ.get("SLUICE_BUILD_DIR", os.path.join(SOURCE, "build")), "extensions")


def module(name):
    path = os.path.join(EXT_DIR, "lib%s.so" % name)
    assert os.path.exists(path), "build the extension first: %s" % path
    return path


def ext(ftype, config, **extra):
    entry = {"type": ftype, "module": module(ftype), "config": config}
    entry.update(extra)
    return entry


def echo(body):
    return json.loads(body)


def req_header(doc, name):
    for k, v in doc["headers"]:
        if k.lower() == name:
            return v
    return None


def metric(sl, text):
    _, _, m = http_request(sl.admin_port, "GET", "/metrics")
    return text.encode() in m, m


# ---------------------------------------------------------------------------- header_rewrite

@case
def header_rewrite_sets_adds_and_removes_with_variables():
    up = Upstream()
    cfg = simple_config(up.address, filters_before=[ext("header_rewrite", {
        "request": {"remove": ["x-secret"],
                    "set": {"x-client": "${client_ip}", "x-line": "${method} ${path}",
                            "x-agent": "${request_header:user-agent}", "x-none": "${request_header:x-absent}",
                            "x-cost": "$$5 ${authority}"},
                    "add": {"x-rid": "${request_id}"}},
        "response": {"remove": ["x-upstream-name"],
                     "set": {"x-served": "${status} ${upstream_cluster} ${response_header:content-type}"}}})])
    sl = Sluice(cfg)
    status, hs, body = http_request(sl.port(), "GET", "/echo/a?b=1",
                                    headers={"x-secret": "s3", "user-agent": "probe/1", "host": "h.example"})
    assert status == 200, body
    doc = echo(body)
    assert req_header(doc, "x-secret") is None, doc
    assert req_header(doc, "x-client") == "127.0.0.1", doc
    assert req_header(doc, "x-line") == "GET /echo/a?b=1", doc
    assert req_header(doc, "x-agent") == "probe/1", doc
    assert req_header(doc, "x-none") is None, doc  # an empty expansion sets nothing
    assert req_header(doc, "x-cost") == "$5 h.example", doc
    rid = header(hs, "x-request-id")
    assert rid and req_header(doc, "x-rid") == rid, (rid, doc)
    assert header(hs, "x-upstream-name") is None, hs
    assert header(hs, "x-served") == "200 up application/json", hs
    # a local reply (404, no route) also passes through the response hook
    status, hs, _ = http_request(sl.port(), "GET", "/status/404")
    assert status == 404 and header(hs, "x-served").startswith("404 up"), hs
    sl.stop()


@case
def header_rewrite_config_errors_name_the_pointer():
    up = Upstream()
    bad = [({"request": {"set": {"x-a": "${nope}"}}}, "/config/request/set/x-a: unknown variable ${nope}"),
           ({"request": {"set": {"x-a": "${status}"}}}, "/config/request/set/x-a: ${status} is only known in response"),
           ({"request": {"sett": {}}}, "/config/request/sett: unknown key"),
           ({"request": {"remove": ["bad name"]}}, "/config/request/remove/0: expected a header name"),
           ({"request": {"set": {"x-a": 42}}}, "/config/request/set/x-a: expected a string, got 42"),
           ({"response": {"set": {"x-a": "a$b"}}}, "/config/response/set/x-a: a '$' starts ${variable}"),
           ({"other": 1}, "/config/other: unknown key")]
    for config, expected in bad:
        code, out = run_validate(simple_config(up.address, filters_before=[ext("header_rewrite", config)]))
        assert code == 1 and ("/listeners/0/filters/0" + expected) in out, (config, out)


@case
def header_rewrite_rejects_odd_values():
    """Config the core's JSON parser accepts but the filter must refuse (the module sees the
    config re-serialized by the core; malformed text is covered by test_extensions_sdk)."""
    up = Upstream()
    for config, expected in [({"request": []}, "/config/request: expected an object, got []"),
                             ({"request": {"remove": "x"}}, "/config/request/remove: expected an array"),
                             ({"request": {"set": {"x-a": "a\r\nb"}}}, "/config/request/set/x-a: a header value must not contain CR"),
                             ({"request": {"set": {"x-a": "${request_header:}"}}}, "/config/request/set/x-a: unknown variable"),
                             ({"request": {"set": {"x-a": "${method"}}}, "/config/request/set/x-a: unterminated ${"),
                             ({"response": {"set": {"a/b~": "x"}}}, "/config/response/set/a~1b~0: expected a header name")]:
        code, out = run_validate(simple_config(up.address, filters_before=[ext("header_rewrite", config)]))
        assert code == 1 and ("/listeners/0/filters/0" + expected) in out, (config, out)


# ------------------------------------------------------------------------------ ip_allowlist

@case
def ip_allowlist_allows_listed_ranges_and_denies_the_rest():
    up = Upstream()
    allowed = simple_config(up.address, filters_before=[ext("ip_allowlist", {"allow": ["10.0.0.0/8", "127.0.0.0/8"]})])
    sl = Sluice(allowed)
    assert http_request(sl.port(), "GET", "/echo")[0] == 200
    sl.stop()
    denied = simple_config(up.address, admin={"address": "127.0.0.1:0"}, filters_before=[
        ext("ip_allowlist", {"allow": ["10.0.0.0/8", "::1", "2001:db8::/32"], "status": 451, "body": "not from here\n"},
            name="office")])
    sl = Sluice(denied)
    before = up.stats()["requests"]
    for _ in range(3):
        status, _, body = http_request(sl.port(), "GET", "/echo")
        assert status == 451 and body == b"not from here\n", (status, body)
    assert up.stats()["requests"] == before + 1  # only the /stats call itself reached it
    ok, m = metric(sl, 'sluice_ip_allowlist_denied_total{filter="office"} 3')
    assert ok, m
    sl.stop()


@case
def ip_allowlist_config_errors():
    up = Upstream()
    for config, expected in [({"allow": ["10.0.0.1/8"]}, "/config/allow/0: host bits are set"),
                             ({"allow": ["10.0.0.0/33"]}, "/config/allow/0: an IPv4 prefix length is 0..32"),
                             ({"allow": ["fe80::/129"]}, "/config/allow/0: an IPv6 prefix length is 0..128"),
                             ({"allow": ["example.com"]}, "/config/allow/0: expected an IPv4 or IPv6"),
                             ({"allow": []}, "/config/allow: expected a non-empty array"),
                             ({}, "/config/allow: is required"),
                             ({"allow": ["::1"], "status": 200}, "/config/status: expected an integer 400..599"),
                             ({"allow": ["::1"], "extra": 1}, "/config/extra: unknown key")]:
        code, out = run_validate(simple_config(up.address, filters_before=[ext("ip_allowlist", config)]))
        assert code == 1 and ("/listeners/0/filters/0" + expected) in out, (config, out)


# --------------------------------------------------------------------------------- ext_authz

def authz_config(up, authz_address, config):
    config = dict(config)
    config.setdefault("cluster", "authz")
    # The filter's default (200 ms) is tight for a sanitized sluice on a loaded machine.
    config.setdefault("timeout_ms", 200 * SLOW)
    return simple_config(up.address, admin={"address": "127.0.0.1:0"},
                         filters_before=[ext("ext_authz", config)],
                         clusters=[{"name": "up", "endpoints": [{"address": up.address}]},
                                   {"name": "authz", "endpoints": [{"address": authz_address}]}])


@case
def ext_authz_allows_on_2xx_and_denies_with_the_service_status():
    up = Upstream()
    authz = Upstream(name="authz", delay_ms=50)  # the request really waits for the answer
    sl = Sluice(authz_config(up, authz.address, {"path_prefix": "/status/200"}))
    status, _, body = http_request(sl.port(), "GET", "/echo/ok", headers={"authorization": "Bearer t"})
    assert status == 200 and echo(body)["path"] == "/echo/ok", body
    assert authz.stats()["requests"] >= 2  # the check (and this /stats)
    sl.stop()
    sl = Sluice(authz_config(up, authz.address, {"path_prefix": "/status/403"}))
    before = up.stats()["requests"]
    status, hs, body = http_request(sl.port(), "GET", "/echo/no")
    assert status == 403 and body == b"status 403\n", (status, body)
    assert header(hs, "content-type") == "text/plain", hs
    assert up.stats()["requests"] == before + 1  # never forwarded (only /stats)
    # keep-alive: several checks on one connection
    conn = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10 * SLOW)
    for _ in range(5):
        assert http_request(sl.port(), "GET", "/x", conn=conn)[0] == 403
    conn.close()
    ok, m = metric(sl, 'sluice_ext_authz_requests_total{filter="ext_authz",result="denied"} 6')
    assert ok, m
    sl.stop()


@case
def ext_authz_copies_headers_both_ways():
    up = Upstream()
    authz = Upstream(name="authz")
    sl = Sluice(authz_config(up, authz.address, {"path_prefix": "/response-headers?h=x-user:alice",
                                                 "headers_to_authz": ["authorization", "cookie"],
                                                 "headers_from_authz": ["x-user", "x-upstream-name"]}))
    status, _, body = http_request(sl.port(), "GET", "/p", headers={"authorization": "Bearer t"})
    doc = echo(body)
    assert status == 200, body
    assert req_header(doc, "x-user") == "alice/p", doc  # the service saw "?h=x-user:alice" + "/p"
    assert req_header(doc, "x-upstream-name") == "authz", doc
    sl.stop()


@case
def ext_authz_failure_denies_or_allows_as_configured():
    up = Upstream()
    dead = "127.0.0.1:%d" % free_port()
    sl = Sluice(authz_config(up, dead, {}))
    status, _, body = http_request(sl.port(), "GET", "/echo")
    assert status == 403 and body == b"authorization unavailable\n", (status, body)
    ok, m = metric(sl, 'sluice_ext_authz_requests_total{filter="ext_authz",result="error"} 1')
    assert ok, m
    sl.stop()
    sl = Sluice(authz_config(up, dead, {"failure_status": 503}))
    assert http_request(sl.port(), "GET", "/echo")[0] == 503
    sl.stop()
    sl = Sluice(authz_config(up, dead, {"failure_mode_allow": True}))
    assert http_request(sl.port(), "GET", "/echo")[0] == 200
    sl.stop()
    # a service slower than timeout_ms is a failure too
    slow = Upstream(name="authz", delay_ms=1000 * SLOW)
    sl = Sluice(authz_config(up, slow.address, {"timeout_ms": 50 * SLOW, "path_prefix": "/status/200"}))
    assert http_request(sl.port(), "GET", "/echo")[0] == 403
    sl.stop()


@case
def ext_authz_client_leaving_while_the_check_is_in_flight_is_harmless():
    import socket
    up = Upstream()
    authz = Upstream(name="authz", delay_ms=100)
    sl = Sluice(authz_config(up, authz.address, {"path_prefix": "/status/200"}))
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", sl.port()))
        s.sendall(b"GET /gone HTTP/1.1\r\nHost: h\r\n\r\n")
        s.close()
    assert http_request(sl.port(), "GET", "/echo")[0] == 200
    sl.stop()


@case
def ext_authz_config_errors():
    up = Upstream()
    for config, expected in [({"cluster": "nope"}, '/config/cluster: no cluster named "nope"'),
                             ({"path_prefix": "x"}, "/config/path_prefix: must start with '/'"),
                             ({"timeout_ms": 0}, "/config/timeout_ms: expected an integer 1..60000"),
                             ({"headers_to_authz": ["a b"]}, "/config/headers_to_authz/0: expected a header name"),
                             ({"failure_mode_allow": "yes"}, "/config/failure_mode_allow: expected true or false")]:
        code, out = run_validate(authz_config(up, up.address, config))
        assert code == 1 and ("/listeners/0/filters/0" + expected) in out, (config, out)
    c = authz_config(up, up.address, {})
    del c["listeners"][0]["filters"][0]["config"]["cluster"]
    code, out = run_validate(c)
    assert code == 1 and "/listeners/0/filters/0/config/cluster: is required" in out, out


# ---------------------------------------------------------------------------- body_transform

def pattern(n):
    return bytes((ord("a") + i % 26) for i in range(n))


@case
def body_transform_rewrites_buffered_response_and_request_bodies():
    up = Upstream()
    sl = Sluice(simple_config(up.address, filters_before=[ext("body_transform", {
        "response": [{"find": "abc", "replace": "[ABC]"}, {"find": "xyz", "replace": ""}],
        "request": [{"find": "world", "replace": "sluice"}]})]))
    for q in ("n=1000", "n=100000&chunked=1"):
        status, hs, body = http_request(sl.port(), "GET", "/bytes?" + q)
        n = int(q.split("&")[0][2:])
        expected = pattern(n).replace(b"abc", b"[ABC]").replace(b"xyz", b"")
        assert status == 200 and body == expected, (q, len(body), body[:60])
        assert header(hs, "content-length") == str(len(expected)), hs
    status, _, body = http_request(sl.port(), "POST", "/echo", body=b"hello world, world")
    doc = echo(body)
    assert doc["body_sha256"] == hashlib.sha256(b"hello sluice, sluice").hexdigest(), doc
    # chunked request body, buffered whole then rewritten
    c = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10 * SLOW)
    c.request("POST", "/echo", body=iter([b"wor", b"ld", b"!"]), encode_chunked=True)
    doc = echo(c.getresponse().read())
    assert doc["body_sha256"] == hashlib.sha256(b"sluice!").hexdigest(), doc
    c.close()
    # a bodyless request is not held up
    assert http_request(sl.port(), "GET", "/echo")[0] == 200
    sl.stop()


@case
def body_transform_skips_other_types_and_large_bodies():
    up = Upstream()
    sl = Sluice(simple_config(up.address, filters_before=[ext("body_transform", {
        "response": [{"find": "abc", "replace": "!"}], "content_types": ["text/"]})]))
    assert http_request(sl.port(), "GET", "/bytes?n=100")[2] == pattern(100)  # octet-stream
    assert http_request(sl.port(), "GET", "/status/418")[2] == b"status 418\n"
    sl.stop()
    sl = Sluice(simple_config(up.address, filters_before=[ext("body_transform", {
        "response": [{"find": "abc", "replace": "!"}], "max_body_bytes": 500})]))
    assert http_request(sl.port(), "GET", "/bytes?n=1000")[2] == pattern(1000)  # content-length
    assert http_request(sl.port(), "GET", "/bytes?n=1000&chunked=1")[2] == pattern(1000)  # buffered
    assert http_request(sl.port(), "GET", "/bytes?n=100")[2] == pattern(100).replace(b"abc", b"!")
    sl.stop()


@case
def body_transform_config_errors():
    up = Upstream()
    for config, expected in [({}, "/config: expected \"request\" and/or \"response\" rules"),
                             ({"response": [{"find": ""}]}, "/config/response/0/find: expected a non-empty string"),
                             ({"response": [{"find": "a"}]}, "/config/response/0/replace: is required"),
                             ({"response": []}, "/config/response: expected a non-empty array"),
                             ({"request": [{"find": "a", "replace": "b", "x": 1}]}, "/config/request/0/x: unknown key"),
                             ({"response": [{"find": "a", "replace": "b"}], "max_body_bytes": 0},
                              "/config/max_body_bytes: expected an integer")]:
        code, out = run_validate(simple_config(up.address, filters_before=[ext("body_transform", config)]))
        assert code == 1 and ("/listeners/0/filters/0" + expected) in out, (config, out)


# ------------------------------------------------------------------------------ all together

@case
def example_configs_validate_and_extensions_chain():
    """Each extension's example.json validates (module path pointed at this build), and all
    four extensions run in one chain."""
    for name in ("header_rewrite", "ip_allowlist", "ext_authz", "body_transform"):
        with open(os.path.join(SOURCE, "extensions", name, "example.json")) as f:
            cfg = json.load(f)
        for flt in cfg["listeners"][0]["filters"]:
            if "module" in flt:
                flt["module"] = module(name)
        code, out = run_validate(cfg)
        assert code == 0, (name, out)
    up = Upstream()
    authz = Upstream(name="authz")
    cfg = authz_config(up, authz.address, {"path_prefix": "/status/204"})
    cfg["listeners"][0]["filters"][0:0] = [
        ext("ip_allowlist", {"allow": ["127.0.0.1"]}),
        ext("header_rewrite", {"request": {"set": {"x-seen": "${client_ip}"}}}),
        ext("body_transform", {"response": [{"find": "127.0.0.1", "replace": "LOOPBACK"}]})]
    sl = Sluice(cfg)
    status, _, body = http_request(sl.port(), "GET", "/echo")
    assert status == 200 and echo(body)["headers"].count(["x-seen", "LOOPBACK"]) == 1, body
    sl.stop()


if __name__ == "__main__":
    run_cases()
