"""cors through the real binary: preflights answered locally (never reaching the upstream),
CORS headers on actual responses, disallowed origins, config errors."""
from harness import (Sluice, Upstream, case, header, http_request, run_cases, run_validate,
                     simple_config)

CORS = {"allow_origins": ["https://app.example.com"],
        "allow_origin_regex": ["https://[a-z]+\\.example\\.org"],
        "allow_methods": ["GET", "POST", "PUT"], "allow_headers": ["content-type", "authorization"],
        "expose_headers": ["x-request-id"], "max_age_s": 600, "allow_credentials": True}


def cors_config(up, cfg=None):
    return simple_config(up.address, filters_before=[{"type": "cors", "config": cfg or CORS}])


def upstream_requests(up):
    """Requests the upstream served before this call (its /stats counts itself)."""
    return up.stats()["requests"] - 1


@case
def preflight_is_answered_locally():
    up = Upstream()
    sl = Sluice(cors_config(up))
    before = upstream_requests(up)
    for origin in ("https://app.example.com", "https://shop.example.org"):
        status, hs, body = http_request(sl.port(), "OPTIONS", "/api/items", {
            "Origin": origin, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type"})
        assert status == 204, (status, hs)
        assert body == b""
        assert header(hs, "access-control-allow-origin") == origin, hs
        assert header(hs, "access-control-allow-methods") == "GET, POST, PUT", hs
        assert header(hs, "access-control-allow-headers") == "content-type, authorization", hs
        assert header(hs, "access-control-max-age") == "600", hs
        assert header(hs, "access-control-allow-credentials") == "true", hs
        assert header(hs, "vary") == "Origin", hs
    # Neither preflight reached the upstream.
    after = upstream_requests(up)
    assert after == before + 1, (before, after)  # + 1: the first /stats call
    sl.stop()


@case
def actual_request_gets_cors_headers():
    up = Upstream()
    sl = Sluice(cors_config(up))
    before = upstream_requests(up)
    status, hs, _ = http_request(sl.port(), "POST", "/api/items", {"Origin": "https://app.example.com"},
                                 body=b"{}")
    assert status == 200, status
    assert header(hs, "access-control-allow-origin") == "https://app.example.com", hs
    assert header(hs, "access-control-allow-credentials") == "true", hs
    assert header(hs, "access-control-expose-headers") == "x-request-id", hs
    assert header(hs, "vary") == "Origin", hs
    assert header(hs, "access-control-allow-methods") is None, hs
    assert upstream_requests(up) == before + 2  # the request and the first /stats call
    sl.stop()


@case
def disallowed_origin_gets_no_cors_headers():
    up = Upstream()
    sl = Sluice(cors_config(up))
    before = upstream_requests(up)
    # A preflight from a disallowed origin goes on as an ordinary OPTIONS request.
    status, hs, _ = http_request(sl.port(), "OPTIONS", "/api", {
        "Origin": "https://evil.example.net", "Access-Control-Request-Method": "PUT"})
    assert status == 200, status
    assert not [k for k, _ in hs if k.lower().startswith("access-control-")], hs
    assert upstream_requests(up) == before + 2  # the request and the first /stats call
    # An unanchored look-alike of a regex origin is refused too.
    status, hs, _ = http_request(sl.port(), "GET", "/api", {"Origin": "https://shop.example.org.evil.net"})
    assert status == 200
    assert not [k for k, _ in hs if k.lower().startswith("access-control-")], hs
    assert header(hs, "vary") == "Origin", hs
    sl.stop()


@case
def wildcard_without_credentials():
    up = Upstream()
    sl = Sluice(cors_config(up, {"allow_origins": ["*"]}))
    status, hs, _ = http_request(sl.port(), "OPTIONS", "/", {
        "Origin": "https://any.example", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert header(hs, "access-control-allow-origin") == "*", hs
    assert header(hs, "access-control-allow-methods") == "GET, HEAD, POST", hs
    assert header(hs, "vary") is None, hs
    status, hs, _ = http_request(sl.port(), "GET", "/", {"Origin": "https://any.example"})
    assert status == 200 and header(hs, "access-control-allow-origin") == "*", hs
    sl.stop()


@case
def config_errors_name_the_key():
    up = Upstream()
    for cfg, pointer in (
            ({"allow_origins": ["*"], "allow_credentials": True}, "/config/allow_origins/0"),
            ({"allow_origins": ["https://a.example"], "allow_origin_regex": ["(x"]}, "/config/allow_origin_regex/0"),
            ({"allow_origins": ["https://a.example"], "max_age_s": 100000}, "/config/max_age_s"),
            ({"allow_origins": ["https://a.example"], "allow_methods": ["G T"]}, "/config/allow_methods/0"),
            ({"allow_origins": ["https://a.example"], "allowed_headers": []}, "/config/allowed_headers")):
        code, out = run_validate(cors_config(up, cfg))
        assert code == 1 and "/listeners/0/filters/0" + pointer in out, (cfg, out)


if __name__ == "__main__":
    run_cases()
