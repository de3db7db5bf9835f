"""schema/sluice.schema.json against the loader: `sluice schema` prints the file, every example
config validates, and the schema's own examples and a table of wrong (and tricky valid) configs
get the same verdict from the schema and from `sluice validate -c`."""
import copy
import glob
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import jsonschema

from harness import SLOW, SLUICE, SOURCE, case, run_cases, run_validate

SCHEMA_PATH = os.path.join(SOURCE, "schema", "sluice.schema.json")


def schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def validator():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def schema_errors(v, cfg):
    return ["/" + "/".join(str(p) for p in e.absolute_path) + ": " + e.message[:160]
            for e in v.iter_errors(cfg)]


def validate_all(configs):
    """`sluice validate` on each config, two at a time: [(exit code, output)]."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run_validate, configs))


def base(filters=None, clusters=None):
    """One listener with `filters` (default: a router to cluster "app") and cluster "app"."""
    router = {"type": "router", "config": {"virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "cluster": "app"}]}]}}
    return {
        "listeners": [{"name": "web", "address": "127.0.0.1:8080",
                       "filters": list(filters) + [router] if filters is not None else [router]}],
        "clusters": clusters if clusters is not None else
        [{"name": "app", "endpoints": [{"address": "127.0.0.1:3000"}]}],
    }


def with_(cfg, path, value):
    """A copy of cfg with the value at `path` (a list of keys/indexes) replaced; a value of
    DELETE removes the key."""
    c = copy.deepcopy(cfg)
    node = c
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return c


DELETE = object()
L0 = ["listeners", 0]
C0 = ["clusters", 0]
ROUTE0 = L0 + ["filters", 0, "config", "virtual_hosts", 0, "routes", 0]


def router_route(**route):
    r = {"match": {"prefix": "/"}, "cluster": "app"}
    r.update(route)
    return with_(base(), ROUTE0, {k: v for k, v in r.items() if v is not None})


def filt(type_, config):
    return base([{"type": type_, "config": config}])


RL_RULE = {"match": {"prefix": "/"}, "requests_per_minute": 60, "burst": 10}
JWT_PROVIDER = {"name": "idp", "algorithms": ["HS256"],
                "jwks": {"inline": {"keys": [{"kty": "oct", "alg": "HS256", "k": "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ"}]}}}


def jwt(**provider):
    p = dict(JWT_PROVIDER)
    p.update(provider)
    return filt("jwt_authn", {"providers": [{k: v for k, v in p.items() if v is not None}],
                              "rules": [{"match": {"prefix": "/"}, "requires": "idp"}]})


# (label, config, valid). Left out on purpose, because a schema cannot know them (sluice
# validate checks them): files that must exist and parse (certificates, keys, JWKS and
# taxonomy files, modules), environment variables of {"env"} secrets, references (a route's or
# a JWKS's cluster, a rule's provider, a blocked agent's name), duplicate names and addresses,
# regex and access-log template syntax, the key material of an inline JWKS, filter types only a
# module provides, and integers written with a fraction part (5.0: JSON Schema's "integer"
# accepts it, the loader does not).
TABLE = [
    # top level
    ("workers as a string", with_(base(), ["workers"], "2"), False),
    ("workers above 1024", with_(base(), ["workers"], 2000), False),
    ("unknown top-level key", with_(base(), ["listener"], {}), False),
    ("listeners missing", with_(base(), ["listeners"], DELETE), False),
    ("listeners empty", with_(base(), ["listeners"], []), False),
    ("$schema not a string", with_(base(), ["$schema"], 5), False),
    ("$schema string", with_(base(), ["$schema"], "../schema/sluice.schema.json"), True),
    ("grace_period_ms negative", with_(base(), ["shutdown"], {"grace_period_ms": -1}), False),
    ("startup unknown key", with_(base(), ["startup"], {"wait_ms": 5}), False),
    # overload
    ("overload all limits", with_(base(), ["overload"], {"max_connections": 100000000, "max_requests_per_worker": 1, "max_buffered_bytes_per_worker": 2 ** 50}), True),
    ("overload empty (no limits)", with_(base(), ["overload"], {}), True),
    ("overload not an object", with_(base(), ["overload"], [1]), False),
    ("overload unknown key", with_(base(), ["overload"], {"max_requests": 10}), False),
    ("overload max_connections above 10^8", with_(base(), ["overload"], {"max_connections": 100000001}), False),
    ("overload max_requests_per_worker negative", with_(base(), ["overload"], {"max_requests_per_worker": -1}), False),
    ("overload max_buffered_bytes_per_worker above 2^50", with_(base(), ["overload"], {"max_buffered_bytes_per_worker": 2 ** 50 + 1}), False),
    ("overload max_connections as a string", with_(base(), ["overload"], {"max_connections": "1000"}), False),
    # admin
    ("admin without address", with_(base(), ["admin"], {}), False),
    ("admin non-loopback without api_key", with_(base(), ["admin"], {"address": "0.0.0.0:9901"}), False),
    ("admin non-loopback with empty api_key", with_(base(), ["admin"], {"address": "0.0.0.0:9901", "api_key": ""}), False),
    ("admin non-loopback with api_key", with_(base(), ["admin"], {"address": "0.0.0.0:9901", "api_key": "k"}), True),
    ("admin loopback without api_key", with_(base(), ["admin"], {"address": "localhost:9901"}), True),
    ("api_key secret with two keys", with_(base(), ["admin"], {"address": "127.0.0.1:1", "api_key": {"env": "A", "file": "b"}}), False),
    # listeners
    ("listener without name", with_(base(), L0 + ["name"], DELETE), False),
    ("listener name empty", with_(base(), L0 + ["name"], ""), False),
    ("listener address a hostname", with_(base(), L0 + ["address"], "localhost:8080"), False),
    ("listener port out of range", with_(base(), L0 + ["address"], "127.0.0.1:70000"), False),
    ("listener IPv6 address", with_(base(), L0 + ["address"], "[::1]:0"), True),
    ("listener without filters", with_(base(), L0 + ["filters"], DELETE), False),
    ("max_request_headers_bytes too small", with_(base(), L0 + ["limits"], {"max_request_headers_bytes": 100}), False),
    ("limits unknown key", with_(base(), L0 + ["limits"], {"max_body": 1}), False),
    ("request_id header empty", with_(base(), L0 + ["request_id"], {"header": ""}), False),
    ("tls min_version 1.1", with_(base(), L0 + ["tls"], {"certificates": [{"cert_file": "a", "key_file": "b"}], "min_version": "1.1"}), False),
    ("tls without certificates", with_(base(), L0 + ["tls"], {"certificates": []}), False),
    ("tls alpn h2", with_(base(), L0 + ["tls"], {"certificates": [{"cert_file": "a", "key_file": "b"}], "alpn": ["h2", "http/1.1"]}), False),
    ("filter without type", with_(base(), L0 + ["filters", 0, "type"], DELETE), False),
    ("filter config not an object", with_(base(), L0 + ["filters", 0, "config"], "x"), False),
    ("filter unknown key", with_(base(), L0 + ["filters", 0, "typo"], 1), False),
    # clusters
    ("cluster without endpoints", with_(base(), C0 + ["endpoints"], DELETE), False),
    ("bad lb_policy", with_(base(), C0 + ["lb_policy"], "fastest"), False),
    ("hash_on with round_robin", with_(base(), C0 + ["hash_on"], {"header": "x-user"}), False),
    ("hash_on empty with ring_hash", with_(with_(base(), C0 + ["lb_policy"], "ring_hash"), C0 + ["hash_on"], {}), False),
    ("hash_on header and client_ip", with_(with_(base(), C0 + ["lb_policy"], "maglev"), C0 + ["hash_on"], {"header": "x", "client_ip": True}), False),
    ("hash_on header with client_ip false", with_(with_(base(), C0 + ["lb_policy"], "maglev"), C0 + ["hash_on"], {"header": "x", "client_ip": False}), True),
    ("endpoint port 0", with_(base(), C0 + ["endpoints", 0, "address"], "127.0.0.1:0"), False),
    ("endpoint without port", with_(base(), C0 + ["endpoints", 0, "address"], "localhost"), False),
    ("endpoint two colons", with_(base(), C0 + ["endpoints", 0, "address"], "a:b:80"), False),
    ("endpoint hostname", with_(base(), C0 + ["endpoints", 0, "address"], "api.internal:80"), True),
    ("endpoint weight 0", with_(base(), C0 + ["endpoints", 0, "weight"], 0), False),
    ("dns_refresh_ms too small", with_(base(), C0 + ["dns_refresh_ms"], 10), False),
    ("health_check path without slash", with_(base(), C0 + ["health_check"], {"path": "healthz"}), False),
    ("health_check status 600", with_(base(), C0 + ["health_check"], {"expected_statuses": [600]}), False),
    ("outlier max_ejection_percent 101", with_(base(), C0 + ["outlier_detection"], {"max_ejection_percent": 101}), False),
    ("circuit_breaker max_pending 0", with_(base(), C0 + ["circuit_breaker"], {"max_pending": 0}), False),
    ("cluster tls verify without ca_file", with_(base(), C0 + ["tls"], {"sni": "x"}), False),
    ("cluster tls verify false", with_(base(), C0 + ["tls"], {"verify": False}), True),
    # router
    ("router config missing", with_(base(), L0 + ["filters", 0, "config"], DELETE), False),
    ("router route without action", router_route(cluster=None), False),
    ("router route with two actions", router_route(direct_response={"status": 200}), False),
    ("router route without match", with_(base(), ROUTE0 + ["match"], DELETE), False),
    ("router match with two kinds", router_route(match={"prefix": "/", "path": "/x"}), False),
    ("router redirect status 305", router_route(cluster=None, redirect={"path": "/x", "status": 305}), False),
    ("router redirect scheme ftp", router_route(cluster=None, redirect={"scheme": "ftp"}), False),
    ("router strip_prefix on a path match", router_route(match={"path": "/x"}, strip_prefix=True), False),
    ("router strip_prefix and prefix_rewrite", router_route(strip_prefix=True, prefix_rewrite="/y/"), False),
    ("router retry on bogus", router_route(retry={"attempts": 1, "on": ["bogus"]}), False),
    ("router retry attempts 11", router_route(retry={"attempts": 11}), False),
    ("router direct_response without status", router_route(cluster=None, direct_response={"body": "x"}), False),
    ("router weighted weight 0", router_route(cluster=None, weighted_clusters=[{"cluster": "app", "weight": 0}]), False),
    ("router domain with inner wildcard", with_(base(), ROUTE0[:-2] + ["domains"], ["a*b"]), False),
    ("router header present false", router_route(match={"prefix": "/", "headers": [{"name": "x", "present": False}]}), True),
    ("router header name empty", router_route(match={"prefix": "/", "headers": [{"name": "", "present": True}]}), False),
    ("router header name with a space", router_route(match={"prefix": "/", "headers": [{"name": "x y", "exact": "1"}]}), False),
    ("router method lower case", router_route(match={"prefix": "/", "methods": ["get"]}), False),
    ("router method unknown", router_route(match={"prefix": "/", "methods": ["FETCH"]}), False),
    ("router method M-SEARCH", router_route(match={"prefix": "/", "methods": ["M-SEARCH", "PATCH"]}), True),
    ("router header value with CR", router_route(request_headers_to_add=[{"name": "x", "value": "a\rb"}]), False),
    # ratelimit
    ("ratelimit rule without burst", filt("ratelimit", {"rules": [{"requests_per_minute": 60}]}), False),
    ("ratelimit rules empty", filt("ratelimit", {"rules": []}), False),
    ("ratelimit key with two fields", filt("ratelimit", {"rules": [dict(RL_RULE, key={"header": "x", "client_ip": True})]}), False),
    ("ratelimit key client_ip false", filt("ratelimit", {"rules": [dict(RL_RULE, key={"client_ip": False})]}), False),
    ("ratelimit backend memcached", filt("ratelimit", {"rules": [RL_RULE], "backend": "memcached"}), False),
    ("ratelimit failure_mode maybe", filt("ratelimit", {"rules": [RL_RULE], "backend": {"redis": {"address": "127.0.0.1:6379", "failure_mode": "maybe"}}}), False),
    ("ratelimit redis by hostname", filt("ratelimit", {"rules": [RL_RULE], "backend": {"redis": {"address": "redis.internal:6379"}}}), False),
    ("ratelimit redis address and cluster", filt("ratelimit", {"rules": [RL_RULE], "backend": {"redis": {"address": "127.0.0.1:6379", "cluster": "app"}}}), False),
    ("ratelimit redis timeout too long", filt("ratelimit", {"rules": [RL_RULE], "backend": {"redis": {"address": "127.0.0.1:6379", "timeout_ms": 60001}}}), False),
    ("ratelimit max_keys 10", filt("ratelimit", {"rules": [RL_RULE], "max_keys": 10}), False),
    ("ratelimit match prefix without slash", filt("ratelimit", {"rules": [dict(RL_RULE, match={"prefix": "api"})]}), False),
    ("ratelimit full", filt("ratelimit", {"rules": [dict(RL_RULE, key={"metadata": "ai.agent"})], "backend": "local", "response_headers": True, "max_keys": 64}), True),
    # jwt_authn
    ("jwt_authn valid inline HS256", jwt(), True),
    ("jwt_authn algorithm none", jwt(algorithms=["none"]), False),
    ("jwt_authn without algorithms", jwt(algorithms=None), False),
    ("jwt_authn jwks two sources", jwt(jwks={"inline": JWT_PROVIDER["jwks"]["inline"], "file": "x.json"}), False),
    ("jwt_authn jwks path without cluster", jwt(jwks=dict(JWT_PROVIDER["jwks"], path="/jwks")), False),
    ("jwt_authn claim with empty segment", jwt(claim_to_headers=[{"claim": "a..b", "header": "x-a"}]), False),
    ("jwt_authn clock_skew_ms negative", jwt(clock_skew_ms=-5), False),
    ("jwt_authn rules empty", filt("jwt_authn", {"providers": [JWT_PROVIDER], "rules": []}), False),
    ("jwt_authn rule without match", filt("jwt_authn", {"providers": [JWT_PROVIDER], "rules": [{"requires": "idp"}]}), False),
    # cors
    ("cors without origins", filt("cors", {"allow_methods": ["GET"]}), False),
    ("cors origin with a path", filt("cors", {"allow_origins": ["https://a.example/x"]}), False),
    ("cors wildcard with credentials", filt("cors", {"allow_origins": ["*"], "allow_credentials": True}), False),
    ("cors max_age_s above a day", filt("cors", {"allow_origins": ["*"], "max_age_s": 100000}), False),
    ("cors method not a token", filt("cors", {"allow_origins": ["*"], "allow_methods": ["GE T"]}), False),
    ("cors empty origin lists", filt("cors", {"allow_origins": [], "allow_origin_regex": []}), False),
    ("cors regex only", filt("cors", {"allow_origins": [], "allow_origin_regex": ["https://[a-z]+\\.example\\.com"]}), True),
    # ai_agent_tagger
    ("ai_agent_tagger taxonomy custom", filt("ai_agent_tagger", {"taxonomy": "custom"}), False),
    ("ai_agent_tagger tag into user-agent", filt("ai_agent_tagger", {"request_headers": {"agent": "User-Agent"}}), False),
    ("ai_agent_tagger block status 200", filt("ai_agent_tagger", {"block": {"agents": ["GPTBot"], "status": 200}}), False),
    ("ai_agent_tagger block without agents", filt("ai_agent_tagger", {"block": {"status": 403}}), False),
    ("ai_agent_tagger empty config", filt("ai_agent_tagger", {}), True),
    # access_log
    ("access_log format xml", filt("access_log", {"format": "xml"}), False),
    ("access_log sample 1.5", filt("access_log", {"when": {"sample": 1.5}}), False),
    ("access_log flush_ms 0", filt("access_log", {"flush_ms": 0}), False),
    ("access_log unknown key", filt("access_log", {"rotate": True}), False),
    ("access_log template format", filt("access_log", {"path": "stderr", "format": {"template": "%REQ(:method)% %STATUS%"}}), True),
]


@case
def sluice_schema_prints_the_file():
    out = subprocess.run([SLUICE, "schema"], capture_output=True, timeout=30 * SLOW)
    assert out.returncode == 0, out.stderr
    with open(SCHEMA_PATH, "rb") as f:
        assert out.stdout == f.read(), "`sluice schema` differs from schema/sluice.schema.json (rebuild?)"
    json.loads(out.stdout)  # and it is JSON


@case
def schema_is_a_valid_2020_12_schema():
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema", s["$schema"]
    jsonschema.Draft202012Validator.check_schema(s)


@case
def every_example_config_validates():
    v = validator()
    files = sorted(glob.glob(os.path.join(SOURCE, "examples", "*.json")) +
                   glob.glob(os.path.join(SOURCE, "extensions", "*", "example.json")))
    assert len(files) >= 4, files
    for path in files:
        with open(path) as f:
            errs = schema_errors(v, json.load(f))
        assert not errs, (path, errs)


@case
def schema_examples_agree_with_validate():
    v = validator()
    examples = schema()["examples"]
    assert len(examples) >= 2, "the schema carries examples"
    for i, ex in enumerate(examples):
        errs = schema_errors(v, ex)
        code, out = run_validate(ex)
        assert not errs and code == 0, (i, errs, out)


@case
def wrong_configs_get_the_same_verdict():
    v = validator()
    assert sum(1 for _, _, ok in TABLE if not ok) >= 25
    disagree = []
    verdicts = validate_all([cfg for _, cfg, _ in TABLE])
    for (label, cfg, valid), (code, out) in zip(TABLE, verdicts):
        errs = schema_errors(v, cfg)
        loader_ok = code == 0
        schema_ok = not errs
        if loader_ok != valid or schema_ok != valid:
            disagree.append("%s: expected %s, sluice validate %s (%s), schema %s %s" % (
                label, "valid" if valid else "invalid", "ok" if loader_ok else "rejects",
                out.strip()[:200], "ok" if schema_ok else "rejects", errs[:2]))
    assert not disagree, "\n".join(disagree)


@case
def validate_accepts_dollar_schema_and_checks_its_type():
    code, out = run_validate(with_(base(), ["$schema"], "https://example.invalid/sluice.schema.json"))
    assert code == 0, out
    code, out = run_validate(with_(base(), ["$schema"], 5))
    assert code == 1 and "config error: /$schema: expected a string" in out, out


if __name__ == "__main__":
    run_cases()
