"""TLS through the real binary: listener termination (certificates chosen by SNI, ALPN,
min_version, keep-alive and large bodies both ways, close_notify), upstream TLS to a cluster (SNI,
chain and name verification against ca_file), and config errors that name their pointer.

Certificates are made for each run with python3-cryptography: a CA, leaves signed by it."""
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import Sluice, Upstream, case, http_request, run_cases, run_validate, simple_config

DIR = tempfile.mkdtemp(prefix="sluice-tls-")


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_ca(tag):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("sluice test CA " + tag))
            .issuer_name(_name("sluice test CA " + tag)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = _write(os.path.join(DIR, "ca-%s.pem" % tag), cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_leaf(ca, tag, names, ips=()):
    ca_key, ca_cert, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] +
                [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = _write(os.path.join(DIR, tag + ".pem"), cert.public_bytes(serialization.Encoding.PEM))
    key_path = _write(os.path.join(DIR, tag + ".key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, cert


CA = make_ca("one")
A = make_leaf(CA, "a", ["a.test"])
B = make_leaf(CA, "b", ["*.b.test", "b.test"])


def tls_config(up, certs=(A, B), **tls):
    cfg = simple_config(up.address)
    cfg["listeners"][0]["tls"] = dict(
        {"certificates": [{"cert_file": c[0], "key_file": c[1]} for c in certs]}, **tls)
    return cfg


def client_ctx(**kw):
    ctx = ssl.create_default_context(cafile=CA[2])
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def served_cert(port, server_name, ctx=None):
    ctx = ctx or client_ctx()
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
            return x509.load_der_x509_certificate(der), s.selected_alpn_protocol(), s.version()


def https(port, method, path, host="a.test", body=None, conn=None):
    c = conn or http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=_host_ctx(host))
    c.request(method, path, body=body, headers={"Host": host})
    r = c.getresponse()
    return r.status, r.read(), c


def _host_ctx(host):
    # http.client verifies against the connection host (127.0.0.1); check the name ourselves.
    ctx = client_ctx()
    ctx.check_hostname = False
    return ctx


@case
def terminates_tls_and_chooses_the_certificate_by_sni():
    up = Upstream()
    sl = Sluice(tls_config(up))
    port = sl.port()
    cert, alpn, _ = served_cert(port, "a.test")
    assert cert.subject == A[2].subject
    cert, _, _ = served_cert(port, "x.b.test")   # wildcard
    assert cert.subject == B[2].subject
    cert, _, _ = served_cert(port, "b.test")
    assert cert.subject == B[2].subject
    cert, _, _ = served_cert(port, "unknown.test")  # unknown name: the first certificate
    assert cert.subject == A[2].subject
    cert, _, _ = served_cert(port, None)  # no SNI: the first certificate
    assert cert.subject == A[2].subject
    # The chain verifies with the CA and the name: a strict client is happy.
    strict = client_ctx()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with strict.wrap_socket(raw, server_hostname="x.b.test") as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x.b.test\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    headers = {k.lower(): v for k, v in body["headers"]}
    assert headers["x-forwarded-proto"] == "https", headers
    assert sl.stop() == 0


@case
def keep_alive_and_large_bodies_both_ways():
    up = Upstream()
    sl = Sluice(tls_config(up))
    port = sl.port()
    conn = None
    for i in range(20):
        status, _, conn = https(port, "GET", "/echo?i=%d" % i, conn=conn)
        assert status == 200
    payload = os.urandom(3 * 1024 * 1024 + 17)
    status, body, conn = https(port, "POST", "/echo", body=payload, conn=conn)
    assert status == 200, body[:200]
    got = json.loads(body)
    assert got["body_len"] == len(payload) and got["body_sha256"] == hashlib.sha256(payload).hexdigest()
    n = 5 * 1024 * 1024
    status, body, conn = https(port, "GET", "/bytes?n=%d" % n, conn=conn)
    assert status == 200 and len(body) == n, (status, len(body))
    assert body == bytes(ord("a") + i % 26 for i in range(n))
    conn.close()
    assert sl.stop() == 0


@case
def alpn_and_min_version():
    up = Upstream()
    sl = Sluice(tls_config(up, min_version="1.3", alpn=["http/1.1"]))
    port = sl.port()
    ctx = client_ctx()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _, alpn, version = served_cert(port, "a.test", ctx)
    assert alpn == "http/1.1" and version == "TLSv1.3", (alpn, version)
    old = client_ctx()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        served_cert(port, "a.test", old)
        raise AssertionError("a TLS 1.2 client was accepted with min_version 1.3")
    except ssl.SSLError:
        pass
    # Not TLS at all: the connection is closed, the process serves on.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        s.settimeout(5)
        try:
            rest = s.recv(4096)
        except ConnectionResetError:
            rest = b""
        assert not rest.startswith(b"HTTP/1.1"), rest
    assert served_cert(port, "a.test", client_ctx())[0].subject == A[2].subject
    assert sl.stop() == 0


@case
def upstream_tls_verifies_the_chain_and_the_name():
    # sluice terminating TLS is the TLS upstream of a second sluice.
    up = Upstream()
    back = Sluice(tls_config(up))
    cfg = simple_config("127.0.0.1:%d" % back.port(), clusters=[{
        "name": "up", "endpoints": [{"address": "127.0.0.1:%d" % back.port()}],
        "tls": {"sni": "x.b.test", "ca_file": CA[2], "verify": True}}])
    front = Sluice(cfg)
    status, _, body = http_request(front.port(), "GET", "/echo")
    assert status == 200, body
    assert json.loads(body)["name"] == "up"
    # Wrong name: verification fails, the request gets 503 and nothing is sent in clear.
    cfg["clusters"][0]["tls"]["sni"] = "c.test"
    bad = Sluice(cfg)
    status, _, body = http_request(bad.port(), "GET", "/echo")
    assert status in (502, 503), (status, body)
    # Another CA: refused as well.
    other = make_ca("two")
    cfg["clusters"][0]["tls"] = {"sni": "a.test", "ca_file": other[2], "verify": True}
    bad2 = Sluice(cfg)
    status, _, _ = http_request(bad2.port(), "GET", "/echo")
    assert status in (502, 503), status
    for s in (bad2, bad, front, back):
        assert s.stop() == 0


@case
def upstream_tls_without_sni_verifies_the_endpoint_host():
    # Without sni the endpoint's host is the name, as nginx's proxy_ssl_name defaults to the host
    # of proxy_pass: a certificate for another name is refused even though its chain is good.
    def front_for(back, host):
        return Sluice(simple_config("127.0.0.1:%d" % back.port(), clusters=[{
            "name": "up", "endpoints": [{"address": "%s:%d" % (host, back.port())}],
            "tls": {"ca_file": CA[2], "verify": True}}]))

    up = Upstream()
    only_a = Sluice(tls_config(up, certs=(A,)))  # a.test: no localhost, no IP address
    local = make_leaf(CA, "local", ["localhost"], ips=["127.0.0.1"])
    good = Sluice(tls_config(up, certs=(local,)))
    for host in ("localhost", "127.0.0.1"):
        wrong = front_for(only_a, host)
        status, _, body = http_request(wrong.port(), "GET", "/echo")
        assert status in (502, 503), (host, status, body)
        right = front_for(good, host)
        status, _, body = http_request(right.port(), "GET", "/echo")
        assert status == 200, (host, status, body)
        assert json.loads(body)["name"] == "up"
        assert wrong.stop() == 0 and right.stop() == 0
    # Verification off: no name check (and no chain check), as documented.
    cfg = simple_config("127.0.0.1:%d" % only_a.port(), clusters=[{
        "name": "up", "endpoints": [{"address": "localhost:%d" % only_a.port()}],
        "tls": {"verify": False}}])
    lax = Sluice(cfg)
    status, _, body = http_request(lax.port(), "GET", "/echo")
    assert status == 200, (status, body)
    for s in (lax, good, only_a):
        assert s.stop() == 0


@case
def tls_config_errors_name_their_pointer():
    up_address = "127.0.0.1:9"
    cfg = simple_config(up_address)
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert_file": A[0], "key_file": B[1]}]}
    rc, out = run_validate(cfg)
    assert rc == 1 and "/listeners/0/tls/certificates/0/key_file" in out and "does not match" in out, out
    junk = _write(os.path.join(DIR, "junk.pem"), b"not a certificate\n")
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert_file": junk, "key_file": A[1]}]}
    rc, out = run_validate(cfg)
    assert rc == 1 and "/listeners/0/tls/certificates/0/cert_file" in out, out
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert_file": A[0], "key_file": A[1]}], "min_version": "1.1"}
    rc, out = run_validate(cfg)
    assert rc == 1 and "/listeners/0/tls/min_version" in out, out
    # sluice serves HTTP/1.1 only: offering h2 would make the clients that pick it fail.
    cfg["listeners"][0]["tls"] = {"certificates": [{"cert_file": A[0], "key_file": A[1]}],
                                  "alpn": ["http/1.1", "h2"]}
    rc, out = run_validate(cfg)
    assert rc == 1 and "/listeners/0/tls/alpn/1" in out and "HTTP/1.1 only" in out, out
    cfg = simple_config(up_address, clusters=[{"name": "up", "endpoints": [{"address": up_address}],
                                               "tls": {"sni": "a.test", "verify": True}}])
    rc, out = run_validate(cfg)
    assert rc == 1 and "/clusters/0/tls/ca_file" in out, out
    cfg["clusters"][0]["tls"] = {"sni": "a.test", "ca_file": A[0], "verify": True}
    rc, out = run_validate(cfg)
    assert rc == 0, out


@case
def handed_over_connections_terminate_tls_on_the_worker_that_adopts_them():
    # connection_balance "exact" with 2 workers: every other connection is accepted by one worker
    # and served by the other, handshake included.
    up = Upstream()
    cfg = tls_config(up)
    cfg["listeners"][0]["connection_balance"] = "exact"
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": "tls-key"}
    sl = Sluice(cfg, workers=2)
    conns = []
    for i in range(6):
        status, body, c = https(sl.port(), "GET", "/h%d" % i)
        assert status == 200, (status, body)
        conns.append(c)
    for i, c in enumerate(conns):
        assert https(sl.port(), "GET", "/again%d" % i, conn=c)[0] == 200
    text = http_request(sl.admin_port, "GET", "/stats/prometheus",
                        {"Authorization": "Bearer tls-key"})[2].decode()
    assert 'sluice_worker_requests_total{worker="0"} 6' in text, text
    assert 'sluice_worker_requests_total{worker="1"} 6' in text, text
    for c in conns:
        c.close()
    sl.stop()


if __name__ == "__main__":
    run_cases()
