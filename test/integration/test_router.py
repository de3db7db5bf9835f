"""Router behaviour through the real binary."""
import json

from harness import (Sluice, Upstream, case, header, http_request, parse_responses, raw_exchange, run_cases,
                     run_validate)


def router_config(vhosts, clusters):
    return {"listeners": [{"name": "web", "address": "127.0.0.1:0",
                           "filters": [{"type": "router", "config": {"virtual_hosts": vhosts}}]}],
            "clusters": clusters}


def get(sl, path, headers=None, method="GET"):
    status, hs, body = http_request(sl.port(), method, path, headers or {})
    return status, hs, body


def upstream_of(body):
    return json.loads(body)["name"]


@case
def domains_exact_wildcard_and_default():
    a, b, c = Upstream("a"), Upstream("b"), Upstream("c")
    sl = Sluice(router_config([
        {"name": "exact", "domains": ["api.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},
        {"name": "wild", "domains": ["*.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "b"}]},
        {"name": "default", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "c"}]}],
        [{"name": n, "endpoints": [{"address": u.address}]} for n, u in (("a", a), ("b", b), ("c", c))]))
    assert upstream_of(get(sl, "/", {"Host": "API.Example.com:8080"})[2]) == "a"
    assert upstream_of(get(sl, "/", {"Host": "www.example.com"})[2]) == "b"
    assert upstream_of(get(sl, "/", {"Host": "other.test"})[2]) == "c"
    sl.stop()


@case
def matches_first_route_wins():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(router_config([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": "/exact"}, "cluster": "a"},
        {"match": {"regex": "^/users/[0-9]+$"}, "cluster": "a"},
        {"match": {"prefix": "/v1/", "methods": ["POST"]}, "cluster": "a"},
        {"match": {"prefix": "/v1/", "headers": [{"name": "x-canary", "exact": "1"}]}, "cluster": "a"},
        {"match": {"prefix": "/"}, "cluster": "b"}]}],
        [{"name": "a", "endpoints": [{"address": a.address}]}, {"name": "b", "endpoints": [{"address": b.address}]}]))
    assert upstream_of(get(sl, "/exact")[2]) == "a"
    assert upstream_of(get(sl, "/exact/more")[2]) == "b"
    assert upstream_of(get(sl, "/users/42")[2]) == "a"
    assert upstream_of(get(sl, "/users/42x")[2]) == "b"
    assert upstream_of(get(sl, "/users/42?q=1")[2]) == "a"
    assert upstream_of(get(sl, "/v1/x", method="POST")[2]) == "a"
    assert upstream_of(get(sl, "/v1/x")[2]) == "b"
    assert upstream_of(get(sl, "/v1/x", {"X-Canary": "1"})[2]) == "a"
    assert upstream_of(get(sl, "/v1/x", {"X-Canary": "2"})[2]) == "b"
    sl.stop()


@case
def rewrites_redirects_and_direct_responses():
    up = Upstream()
    sl = Sluice(router_config([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/svc/"}, "strip_prefix": True, "cluster": "up"},
        {"match": {"prefix": "/old/"}, "prefix_rewrite": "/new/", "cluster": "up",
         "request_headers_to_add": [{"name": "x-via-route", "value": "old"}],
         "response_headers_to_remove": ["x-upstream-name"],
         "response_headers_to_add": [{"name": "x-added", "value": "yes"}]},
        {"match": {"prefix": "/moved"}, "redirect": {"path": "/here", "status": 308}},
        {"match": {"prefix": "/away"}, "redirect": {"host": "elsewhere.test", "scheme": "https"}},
        {"match": {"prefix": "/"}, "direct_response": {"status": 418, "body": "teapot\n"}}]}],
        [{"name": "up", "endpoints": [{"address": up.address}]}]))
    status, hs, body = get(sl, "/svc/a/b?x=1")
    assert json.loads(body)["path"] == "/a/b?x=1"
    assert json.loads(get(sl, "/svc/")[2])["path"] == "/"
    status, hs, body = get(sl, "/old/thing")
    doc = json.loads(body)
    assert doc["path"] == "/new/thing"
    assert ["x-via-route", "old"] in doc["headers"], doc
    assert header(hs, "x-upstream-name") is None
    assert header(hs, "x-added") == "yes"
    status, hs, body = get(sl, "/moved?k=v")
    assert status == 308 and header(hs, "location") == "/here?k=v"
    status, hs, body = get(sl, "/away/x", {"Host": "a.test"})
    assert status == 301 and header(hs, "location") == "https://elsewhere.test/away/x", hs
    status, hs, body = get(sl, "/anything")
    assert status == 418 and body == b"teapot\n"
    sl.stop()


@case
def redirects_and_direct_responses_get_the_response_header_rules():
    """A redirect or direct response gets the virtual host's and the route's response header
    rules as an upstream response does: removals first, then the host's additions, then the
    route's (append false replaces)."""
    up = Upstream()
    sl = Sluice(router_config([{"name": "v", "domains": ["*"],
        "response_headers_to_add": [{"name": "x-vhost", "value": "v"}, {"name": "x-both", "value": "vhost"},
                                    {"name": "x-multi", "value": "1"}],
        "routes": [
            {"match": {"prefix": "/secure"}, "redirect": {"scheme": "https", "host": "s.test"},
             "response_headers_to_add": [{"name": "strict-transport-security", "value": "max-age=60"}]},
            {"match": {"prefix": "/gone"}, "redirect": {"path": "/new"},
             "response_headers_to_remove": ["location"]},
            {"match": {"prefix": "/up"}, "cluster": "up",
             "response_headers_to_add": [{"name": "x-both", "value": "route"},
                                         {"name": "x-multi", "value": "2", "append": True}]},
            {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": "no\n"},
             "response_headers_to_add": [{"name": "x-both", "value": "route"},
                                         {"name": "x-multi", "value": "2", "append": True},
                                         {"name": "content-type", "value": "application/problem+json"}]}]}],
        [{"name": "up", "endpoints": [{"address": up.address}]}]))

    def values(hs, name):
        return [v for k, v in hs if k.lower() == name]

    status, hs, _ = get(sl, "/secure/x")
    assert status == 301 and header(hs, "location") == "https://s.test/secure/x", hs
    assert header(hs, "strict-transport-security") == "max-age=60", hs
    assert header(hs, "x-vhost") == "v" and values(hs, "x-both") == ["vhost"], hs
    status, hs, _ = get(sl, "/gone")
    assert status == 301 and header(hs, "location") is None, hs
    # The same rules on an upstream response and on a direct response give the same headers.
    for path, code in (("/up", 200), ("/nothing", 404)):
        status, hs, _ = get(sl, path)
        assert status == code, (path, status)
        assert values(hs, "x-vhost") == ["v"], (path, hs)
        assert values(hs, "x-both") == ["route"], (path, hs)
        assert values(hs, "x-multi") == ["1", "2"], (path, hs)
    assert values(hs, "content-type") == ["application/problem+json"], hs
    sl.stop()


def raw_get(sl, path):
    """One GET on its own connection, as raw bytes, so every header line that went out is seen
    (no client library folds duplicates); returns (status, [(name, value)...], body)."""
    out = raw_exchange(sl.port(), b"GET %s HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n"
                       % path.encode())
    rs = parse_responses(out)
    assert len(rs) == 1, out[:500]
    return rs[0]


@case
def direct_response_content_type_follows_the_header_rules():
    """The host's default `content-type: text/plain` for a local reply's body gives way to the
    router's rules: removed by the route or the virtual host, it is absent; added, it is the
    only content-type; with no rule about it the default stays."""
    sl = Sluice(router_config([
        {"name": "v", "domains": ["h.test"], "routes": [
            {"match": {"prefix": "/bare"}, "direct_response": {"status": 200, "body": "{}"},
             "response_headers_to_remove": ["Content-Type"]},
            {"match": {"prefix": "/json"}, "direct_response": {"status": 200, "body": "{}"},
             "response_headers_to_add": [{"name": "content-type", "value": "application/json"}]},
            {"match": {"prefix": "/readd"}, "direct_response": {"status": 200, "body": "{}"},
             "response_headers_to_remove": ["content-type"],
             "response_headers_to_add": [{"name": "Content-Type", "value": "application/json"}]},
            {"match": {"prefix": "/plain"}, "direct_response": {"status": 200, "body": "hi\n"}}]},
        {"name": "w", "domains": ["*"], "response_headers_to_remove": ["content-type"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": "gone\n"}}]}],
        []))

    def content_types(hs):
        return [v for k, v in hs if k.lower() == "content-type"]

    status, hs, body = raw_get(sl, "/bare")
    assert status == 200 and body == b"{}", (status, body)
    assert content_types(hs) == [], hs
    assert header(hs, "content-length") == "2", hs
    for path in ("/json", "/readd"):
        status, hs, body = raw_get(sl, path)
        assert status == 200 and body == b"{}", (path, status, body)
        assert content_types(hs) == ["application/json"], (path, hs)
    status, hs, body = raw_get(sl, "/plain")
    assert content_types(hs) == ["text/plain"], hs
    # The virtual host's removal applies to its routes' direct responses too.
    out = raw_exchange(sl.port(), b"GET /x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
    (status, hs, body), = parse_responses(out)
    assert status == 404 and body == b"gone\n" and content_types(hs) == [], hs
    # The router's own "no route" reply is not the router's rules: it keeps the default.
    sl2 = Sluice(router_config([{"name": "v", "domains": ["only.test"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}], []))
    status, hs, body = raw_get(sl2, "/")
    assert status == 404 and content_types(hs) == ["text/plain"], hs
    sl.stop()
    sl2.stop()


@case
def header_matchers_present_true_and_false():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(router_config([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/", "headers": [{"name": "X-Debug", "present": False}]}, "cluster": "a"},
        {"match": {"prefix": "/", "headers": [{"name": "x-debug", "present": True}]}, "cluster": "b"}]}],
        [{"name": "a", "endpoints": [{"address": a.address}]}, {"name": "b", "endpoints": [{"address": b.address}]}]))
    assert upstream_of(get(sl, "/p")[2]) == "a"
    assert upstream_of(get(sl, "/p", {"X-Debug": "1"})[2]) == "b"
    assert upstream_of(get(sl, "/p", {"x-debug": ""})[2]) == "b"
    sl.stop()


@case
def header_names_and_methods_are_checked_at_load():
    up = Upstream()
    cases = [
        # The shared header-condition reader (filters/common/request_match) in the wordings of
        # docs/config-errors.md: an empty value first, then one that is not a header name.
        ({"prefix": "/", "headers": [{"name": "", "exact": "1"}]}, "/match/headers/0/name",
         'expected a non-empty string, got ""'),
        ({"prefix": "/", "headers": [{"name": "x y", "present": True}]}, "/match/headers/0/name",
         'expected a header name, got "x y"'),
        ({"prefix": "/", "methods": ["GET", "get"]}, "/match/methods/1", 'did you mean "GET"'),
        ({"prefix": "/", "methods": ["FETCH"]}, "/match/methods/0", "unknown method"),
        ({"prefix": "/", "methods": ["G T"]}, "/match/methods/0", "method name"),
    ]
    for match, pointer, words in cases:
        cfg = router_config([{"name": "v", "domains": ["*"], "routes": [{"match": match, "cluster": "up"}]}],
                            [{"name": "up", "endpoints": [{"address": up.address}]}])
        rc, out = run_validate(cfg)
        where = "/listeners/0/filters/0/config/virtual_hosts/0/routes/0" + pointer
        assert rc == 1 and where + ":" in out and words in out, (match, out)


@case
def weighted_clusters_split_traffic():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(router_config([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "weighted_clusters": [{"cluster": "a", "weight": 80}, {"cluster": "b", "weight": 20}]}]}],
        [{"name": "a", "endpoints": [{"address": a.address}]}, {"name": "b", "endpoints": [{"address": b.address}]}]))
    counts = {"a": 0, "b": 0}
    for i in range(400):
        counts[upstream_of(get(sl, "/w")[2])] += 1
    assert 260 <= counts["a"] <= 370, counts
    sl.stop()


@case
def round_robin_spreads_over_endpoints():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(router_config([{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "ab"}]}],
                              [{"name": "ab", "endpoints": [{"address": a.address, "weight": 3}, {"address": b.address, "weight": 1}]}]))
    counts = {"a": 0, "b": 0}
    for i in range(400):
        counts[upstream_of(get(sl, "/rr")[2])] += 1
    assert counts == {"a": 300, "b": 100}, counts
    sl.stop()


@case
def no_route_is_404_and_paths_are_normalized():
    up = Upstream()
    sl = Sluice(router_config([{"name": "v", "domains": ["only.test"], "routes": [
        {"match": {"prefix": "/a/"}, "cluster": "up"}]}], [{"name": "up", "endpoints": [{"address": up.address}]}]))
    assert get(sl, "/a/x", {"Host": "other.test"})[0] == 404
    assert get(sl, "/b", {"Host": "only.test"})[0] == 404
    # Raw request lines, so no client library normalizes anything first.
    for sent, seen in (("/a/./b/../c", "/a/c"),
                       ("/a/%7Euser", "/a/~user"),
                       ("/a//b///c", "/a/b/c"),
                       ("/a/./b/../c//d/%7Euser?q=%7E", "/a/c/d/~user?q=%7E"),
                       ("/x/../a/y", "/a/y")):
        out = raw_exchange(sl.port(), b"GET %s HTTP/1.1\r\nHost: only.test\r\nConnection: close\r\n\r\n" % sent.encode())
        rs = parse_responses(out)
        assert len(rs) == 1 and rs[0][0] == 200, (sent, out[:300])
        assert json.loads(rs[0][2])["path"] == seen, (sent, seen, rs[0][2])
    # Reserved characters stay encoded: %2F is not a path separator.
    out = raw_exchange(sl.port(), b"GET /a/b%2Fc HTTP/1.1\r\nHost: only.test\r\nConnection: close\r\n\r\n")
    assert json.loads(parse_responses(out)[0][2])["path"].lower() == "/a/b%2fc", out
    sl.stop()


if __name__ == "__main__":
    run_cases()
