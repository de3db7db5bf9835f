"""jwt_authn through the real binary, with tokens minted by an independent implementation
(PyJWT + cryptography): keys from a JWKS file and from a cluster (a small Python JWKS server),
401/403 answers with their challenge, forwarded payload and claims at the upstream, metrics."""
import base64
import http.server
import json
import os
import re
import tempfile
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

from harness import Sluice, Upstream, case, header, http_request, run_cases, simple_config, wait_until

ISSUER = "https://idp.example.com/"
ADMIN_KEY = "jwt-test-admin-key"
HMAC_SECRET = os.urandom(32)


def jwk(alg_cls, key, kid):
    d = json.loads(alg_cls.to_jwk(key))
    d["kid"] = kid
    return d


KEYS = {
    "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa"),
    "ES256": (ec.generate_private_key(ec.SECP256R1()), "ec"),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate(), "ed"),
    "HS256": (HMAC_SECRET, "hmac"),
}
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(rsa_key=None):
    rsa_key = rsa_key or KEYS["RS256"][0]
    return {"keys": [
        jwk(RSAAlgorithm, rsa_key.public_key(), "rsa"),
        jwk(ECAlgorithm, KEYS["ES256"][0].public_key(), "ec"),
        jwk(OKPAlgorithm, KEYS["EdDSA"][0].public_key(), "ed"),
        jwk(HMACAlgorithm, HMAC_SECRET, "hmac"),
    ]}


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now + 600, "iat": now,
         "level": 3, "admin": True, "org": {"team": "core"}}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def mint(alg="RS256", key=None, kid=None, **over):
    k, default_kid = KEYS[alg]
    return jwt.encode(claims(**over), key if key is not None else k, algorithm=alg,
                      headers={"kid": kid or default_kid})


def provider(jwks):
    return {"name": "idp", "issuer": ISSUER, "audiences": ["api"],
            "algorithms": ["RS256", "ES256", "EdDSA", "HS256"], "jwks": jwks,
            "clock_skew_ms": 5000, "forward_payload_header": "x-jwt-payload",
            "claim_to_headers": [{"claim": "sub", "header": "x-user"},
                                 {"claim": "level", "header": "x-level"},
                                 {"claim": "admin", "header": "x-admin"},
                                 {"claim": "org.team", "header": "x-team"}]}


def config(up, jwks, clusters=None):
    filt = {"type": "jwt_authn", "config": {
        "providers": [provider(jwks)],
        "rules": [{"match": {"prefix": "/public"}}, {"match": {"prefix": "/"}, "requires": "idp"}]}}
    cfg = simple_config(up.address, filters_before=[filt], clusters=clusters)
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": ADMIN_KEY}
    return cfg


def get(sl, path="/api", token=None, extra=None):
    headers = dict(extra or {})
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    status, hs, body = http_request(sl.port(), "GET", path, headers)
    return status, hs, body


def echoed(body):
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


def metric(sl, name, **labels):
    status, _, body = http_request(sl.admin_port, "GET", "/stats/prometheus",
                                   {"Authorization": "Bearer " + ADMIN_KEY})
    assert status == 200
    total = 0.0
    for line in body.decode().splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def segment(token, i):
    return token.split(".")[i]


@case
def jwks_file_every_algorithm_and_every_rejection():
    up = Upstream()
    d = tempfile.mkdtemp(prefix="sluice-jwt-")
    path = os.path.join(d, "jwks.json")
    with open(path, "w") as f:
        json.dump(jwks_of(), f)
    sl = Sluice(config(up, {"file": path}))

    # Missing token: challenge without an error.
    status, hs, _ = get(sl)
    assert status == 401
    assert header(hs, "www-authenticate") == 'Bearer realm="idp"', hs
    # A rule without `requires` lets the request through, without headers only a verified
    # token may set.
    status, _, body = get(sl, "/public/x", extra={"X-User": "admin", "X-Other": "kept"})
    assert status == 200
    assert "x-user" not in echoed(body) and echoed(body)["x-other"] == "kept", body

    for alg in ("RS256", "ES256", "EdDSA", "HS256"):
        token = mint(alg)
        status, hs, body = get(sl, token=token, extra={"X-User": "mallory"})
        assert status == 200, (alg, status, body)
        h = echoed(body)
        assert h["x-user"] == "alice", (alg, h)
        assert h["x-level"] == "3" and h["x-admin"] == "true" and h["x-team"] == "core", h
        assert h["x-jwt-payload"] == segment(token, 1), h
        payload = json.loads(base64.urlsafe_b64decode(h["x-jwt-payload"] + "=="))
        assert payload["sub"] == "alice"
        # Repeated (served from the token cache): same answer.
        status, _, body = get(sl, token=token)
        assert status == 200 and echoed(body)["x-user"] == "alice"

    invalid = 'Bearer realm="idp", error="invalid_token"'
    upstream_before = up.stats()["requests"]
    rejections = [
        ("expired", mint(exp=int(time.time()) - 60)),
        ("not_yet_valid", mint(nbf=int(time.time()) + 600)),
        ("issuer", mint(iss="https://evil.example.com/")),
        ("signature", mint(key=OTHER_RSA)),
        ("signature", mint("RS256")[:-4] + ("AAAA" if not mint("RS256").endswith("AAAA") else "BBBB")),
        ("algorithm", jwt.encode(claims(), None, algorithm="none")),
        ("algorithm", jwt.encode(claims(), KEYS["RS256"][0], algorithm="RS384")),
        # HS/RS confusion: an HS256 token keyed with the RSA public key's JWK modulus.
        ("signature", jwt.encode(claims(), base64.urlsafe_b64decode(
            jwk(RSAAlgorithm, KEYS["RS256"][0].public_key(), "rsa")["n"] + "=="),
            algorithm="HS256", headers={"kid": "rsa"})),
        ("malformed", "not.a.jwt"),
        ("malformed", "onlyone"),
        ("malformed", "a" * 9000 + ".b.c"),
    ]
    for reason, token in rejections:
        status, hs, body = get(sl, token=token)
        assert status == 401, (reason, status, body)
        assert header(hs, "www-authenticate") == invalid, (reason, hs)
    # Valid token for another audience: 403.
    status, hs, body = get(sl, token=mint(aud="other"))
    assert status == 403, (status, hs, body)
    assert header(hs, "www-authenticate").startswith('Bearer realm="idp"')

    assert metric(sl, "sluice_jwt_authn_denied_total", filter="jwt_authn", reason="missing") == 1
    expected = {"expired": 1, "not_yet_valid": 1, "issuer": 1, "signature": 3, "algorithm": 2,
                "malformed": 3, "audience": 1}
    for reason, n in expected.items():
        assert metric(sl, "sluice_jwt_authn_denied_total", filter="jwt_authn", reason=reason) == n, reason
    # Nothing reaches the upstream for denied requests (the one more is the /stats call itself).
    assert up.stats()["requests"] == upstream_before + 1, up.stats()


@case
def an_ec_jwk_with_a_short_coordinate_is_accepted():
    # PyJWT before 2.7 (Debian 12 has 2.6) writes EC coordinates without leading zero bytes;
    # sluice reads them as the same numbers. Find a key whose x starts with a zero byte.
    while True:
        key = ec.generate_private_key(ec.SECP256R1())
        if key.public_key().public_numbers().x < (1 << 248):
            break
    jwk_short = jwk(ECAlgorithm, key.public_key(), "short")
    jwk_short["x"] = base64.urlsafe_b64encode(
        key.public_key().public_numbers().x.to_bytes(31, "big").lstrip(b"\0")).rstrip(b"=").decode()
    up = Upstream()
    sl = Sluice(config(up, {"inline": {"keys": [jwk_short]}}))
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": "short"})
    status, _, body = get(sl, "/api", token)
    assert status == 200 and echoed(body)["x-user"] == "alice", (status, body)
    sl.stop()


@case
def inline_hmac_secret_is_redacted_in_config_dump():
    up = Upstream()
    sl = Sluice(config(up, {"inline": jwks_of()}))
    assert get(sl, token=mint("HS256"))[0] == 200
    status, _, body = http_request(sl.admin_port, "GET", "/config_dump",
                                   {"Authorization": "Bearer " + ADMIN_KEY})
    assert status == 200
    secret = jwk(HMACAlgorithm, HMAC_SECRET, "hmac")["k"]
    assert secret.encode() not in body
    assert b"[redacted]" in body


class JwksServer:
    """A tiny JWKS endpoint whose answer the test changes: ("json", doc), ("raw", bytes),
    ("status", code)."""

    def __init__(self, answer):
        self.answer = answer
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                kind, value = outer.answer
                if kind == "status":
                    self.send_response(value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                data = json.dumps(value).encode() if kind == "json" else value
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def remote_config(up, jwks_server, cache_ms=200):
    clusters = [{"name": "up", "endpoints": [{"address": up.address}]},
                {"name": "idp_keys", "endpoints": [{"address": jwks_server.address}]}]
    return config(up, {"cluster": "idp_keys", "path": "/.well-known/jwks.json", "cache_ms": cache_ms},
                  clusters=clusters)


@case
def cluster_jwks_fetched_refreshed_and_kept_on_failure():
    up = Upstream()
    server = JwksServer(("json", jwks_of()))
    try:
        sl = Sluice(remote_config(up, server), workers=2)  # each worker fetches its own set
        token = mint("ES256")
        status, _, body = get(sl, token=token)
        assert status == 200, body
        assert echoed(body)["x-user"] == "alice"

        def failures():
            return metric(sl, "sluice_jwt_authn_jwks_fetch_failures_total", filter="jwt_authn",
                          provider="idp")
        assert failures() == 0
        # Garbage, then an error status: counted, and the last good keys stay in use.
        server.answer = ("raw", b"<html>not json</html>")
        wait_until(lambda: failures() >= 1, message="a garbage JWKS counted")
        assert get(sl, token=token)[0] == 200
        assert get(sl, token=mint("RS256"))[0] == 200
        server.answer = ("status", 500)
        before = failures()
        wait_until(lambda: failures() > before, message="a 500 counted")
        assert get(sl, token=mint("EdDSA"))[0] == 200
        # Rotation: the refreshed set replaces the old RSA key.
        server.answer = ("json", jwks_of(OTHER_RSA))
        rotated = mint("RS256", key=OTHER_RSA)
        old = mint("RS256")
        wait_until(lambda: all(get(sl, token=rotated)[0] == 200 and get(sl, token=old)[0] == 401
                               for _ in range(4)), message="the rotated key in use on every worker")
        # The endpoint goes away entirely: keys kept.
        server.stop()
        before = failures()
        wait_until(lambda: failures() > before, message="a connect failure counted")
        assert get(sl, token=rotated)[0] == 200
    finally:
        try:
            server.stop()
        except Exception:
            pass


@case
def cluster_jwks_never_good_answers_401():
    up = Upstream()
    server = JwksServer(("raw", b"garbage"))
    try:
        sl = Sluice(remote_config(up, server, cache_ms=60000))
        status, hs, _ = get(sl, token=mint("RS256"))
        assert status == 401
        assert header(hs, "www-authenticate") == 'Bearer realm="idp", error="invalid_token"'
        assert metric(sl, "sluice_jwt_authn_jwks_fetch_failures_total", filter="jwt_authn") >= 1
        # The endpoint recovers: the retry picks the keys up.
        server.answer = ("json", jwks_of())
        wait_until(lambda: get(sl, token=mint("RS256"))[0] == 200, timeout=10,
                   message="keys after recovery")
    finally:
        server.stop()


@case
def a_kid_selects_its_key_and_only_that_key():
    # Two RSA keys in the set; the token's kid decides which one verifies it.
    up = Upstream()
    keys = jwks_of()
    keys["keys"].append(jwk(RSAAlgorithm, OTHER_RSA.public_key(), "rsa2"))
    sl = Sluice(config(up, {"inline": keys}))

    def signed_by_other(kid):
        return jwt.encode(claims(), OTHER_RSA, algorithm="RS256",
                          headers={"kid": kid} if kid is not None else None)

    assert get(sl, token=signed_by_other("rsa2"))[0] == 200
    # Without a kid, each key of the matching type may verify it.
    assert "kid" not in jwt.get_unverified_header(signed_by_other(None))
    assert get(sl, token=signed_by_other(None))[0] == 200
    es_without_kid = jwt.encode(claims(), KEYS["ES256"][0], algorithm="ES256")
    assert "kid" not in jwt.get_unverified_header(es_without_kid)
    assert get(sl, token=es_without_kid)[0] == 200
    invalid = 'Bearer realm="idp", error="invalid_token"'
    # Signed by a key of the set, but the kid names another key of the set, or none at all.
    for kid in ("rsa", "unknown"):
        status, hs, body = get(sl, token=signed_by_other(kid))
        assert status == 401, (kid, status, body)
        assert header(hs, "www-authenticate") == invalid, (kid, hs)
    assert metric(sl, "sluice_jwt_authn_denied_total", filter="jwt_authn", reason="signature") == 2
    sl.stop()


@case
def config_errors_are_reported_with_pointers():
    up = Upstream()
    from harness import run_validate
    bad = config(up, {"cluster": "nope"})
    bad["listeners"][0]["filters"][0]["config"]["providers"][0]["algorithms"] = ["RS256", "none"]
    code, out = run_validate(bad)
    assert code != 0
    assert "/providers/0/jwks/cluster" in out, out
    assert "/providers/0/algorithms/1" in out, out


run_cases()
