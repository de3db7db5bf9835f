"""Hot reload: SIGHUP, POST /reload, PUT /config; failures keep the old config; no failed
request from a keep-alive load during reloads; listeners added and removed."""
import http.client
import json
import os
import signal
import threading

from harness import Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until

KEY = "reload-key"


def cfg_for(up_a, up_b, target="a", extra_listener=None):
    cfg = {"admin": {"address": "127.0.0.1:0", "api_key": KEY},
           "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
               {"type": "router", "config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
                   {"match": {"prefix": "/"}, "cluster": target}]}]}}]}],
           "clusters": [{"name": "a", "endpoints": [{"address": up_a.address}]},
                        {"name": "b", "endpoints": [{"address": up_b.address}]}]}
    if extra_listener:
        cfg["listeners"].append(extra_listener)
    return cfg


def fixed_port(cfg, port):
    cfg["listeners"][0]["address"] = "127.0.0.1:%d" % port
    return cfg


def who(port, path="/x"):
    status, hs, body = http_request(port, "GET", path)
    assert status == 200, (status, body)
    return json.loads(body)["name"]


def admin(sl, method, path, body=None):
    return http_request(sl.admin_port, method, path, {"Authorization": "Bearer " + KEY}, body)


def write_config(sl, cfg):
    cfg.setdefault("workers", 1)
    cfg.setdefault("shutdown", {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000})
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)


@case
def reload_changes_routing_three_ways():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(cfg_for(a, b, "a"))
    port = sl.port()
    assert who(port) == "a"
    # 1. SIGHUP re-reads the file (the listener keeps its port: same name and address)
    write_config(sl, fixed_port(cfg_for(a, b, "b"), port))
    sl.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: who(port) == "b", message="SIGHUP reload routes to b")
    assert who(port) == "b"
    # 2. POST /reload
    write_config(sl, fixed_port(cfg_for(a, b, "a"), port))
    status, _, body = admin(sl, "POST", "/reload")
    assert status == 200 and json.loads(body)["generation"] == 3, body
    assert who(port) == "a"
    # 3. PUT /config
    doc = fixed_port(cfg_for(a, b, "b"), port)
    doc["workers"] = 1
    status, _, body = admin(sl, "PUT", "/config", json.dumps(doc).encode())
    assert status == 200 and json.loads(body)["generation"] == 4, body
    assert who(port) == "b"
    _, _, metrics = admin(sl, "GET", "/stats/prometheus")
    assert b'sluice_config_reloads_total{result="success"} 3' in metrics, metrics
    assert b"sluice_config_generation 4" in metrics
    assert sl.stop() == 0


@case
def invalid_reload_keeps_the_old_config():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(cfg_for(a, b, "a"))
    port = sl.port()
    bad = fixed_port(cfg_for(a, b, "nope"), port)
    status, _, body = admin(sl, "PUT", "/config", json.dumps(bad).encode())
    assert status == 400, body
    errs = json.loads(body)["errors"]
    assert any("/listeners/0/filters/0/config/virtual_hosts/0/routes/0/cluster" in e for e in errs), errs
    status, _, body = admin(sl, "PUT", "/config", b"{not json")
    assert status == 400
    write_config(sl, {"listeners": "wrong"})
    status, _, body = admin(sl, "POST", "/reload")
    assert status == 400 and b"/listeners" in body, body
    os.remove(sl.config_path)
    status, _, body = admin(sl, "POST", "/reload")
    assert status == 400 and b"cannot read" in body, body
    assert who(port) == "a"
    _, _, metrics = admin(sl, "GET", "/stats/prometheus")
    assert b'sluice_config_reloads_total{result="failure"} 4' in metrics, metrics
    assert sl.stop() == 0


@case
def no_failed_request_under_load_during_20_reloads():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(cfg_for(a, b, "a"))
    port = sl.port()
    stop = threading.Event()
    failures, counts = [], [0]

    def load():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                conn.request("GET", "/load")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append(r.status)
                counts[0] += 1
            except Exception as e:  # noqa
                failures.append(repr(e))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        doc = fixed_port(cfg_for(a, b, "ab"[i % 2]), port)
        status, _, body = admin(sl, "PUT", "/config", json.dumps(doc).encode())
        assert status == 200, body
        # Let the load make progress on each generation before the next swap.
        seen = counts[0]
        wait_until(lambda: counts[0] >= seen + 5 or failures, message="requests served after reload %d" % i)
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    assert counts[0] > 100, counts
    assert sl.stop() == 0


@case
def listeners_are_added_and_removed():
    a, b = Upstream("a"), Upstream("b")
    sl = Sluice(cfg_for(a, b, "a"))
    port = sl.port()
    extra = {"name": "second", "address": "127.0.0.1:0", "filters": [
        {"type": "router", "config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "cluster": "b"}]}]}}]}
    doc = fixed_port(cfg_for(a, b, "a", extra_listener=extra), port)
    status, _, body = admin(sl, "PUT", "/config", json.dumps(doc).encode())
    assert status == 200, body
    import re
    # The log line comes through the logger's writer thread: wait for it.
    found = wait_until(lambda: re.findall(r"listening listener=second address=\S+:(\d+)", sl.stderr_text()),
                       message="the second listener's listening line")
    ports = [int(m) for m in found]
    assert who(ports[-1]) == "b"
    assert who(port) == "a"
    # a keep-alive connection to the listener that goes away gets its answer, then a close
    conn = http.client.HTTPConnection("127.0.0.1", ports[-1], timeout=5)
    conn.request("GET", "/ka")
    conn.getresponse().read()
    doc = fixed_port(cfg_for(a, b, "a"), port)
    status, _, body = admin(sl, "PUT", "/config", json.dumps(doc).encode())
    assert status == 200, body
    import socket
    # The workers stop accepting on the removed listener once they apply the new snapshot.
    def closed():
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", ports[-1]))
            s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            return s.recv(100) == b""
        except (ConnectionRefusedError, ConnectionResetError):
            return True
        except socket.timeout:
            return False
        finally:
            s.close()
    wait_until(closed, timeout=10, message="the removed listener refusing or closing connections")
    assert who(port) == "a"
    assert sl.stop() == 0


@case
def an_endpoint_removed_by_a_reload_drains():
    a1, a2, a3, b = Upstream("a1"), Upstream("a2"), Upstream("a3"), Upstream("b")

    def config(endpoints):
        cfg = cfg_for(a1, b, "a")
        cfg["clusters"][0]["endpoints"] = [{"address": u.address} for u in endpoints]
        return cfg

    sl = Sluice(config([a1, a2, a3]))
    port = sl.port()
    # a3 is drained by the operator; the reload below changes the cluster but a3 stays drained.
    status, _, body = admin(sl, "POST", "/clusters/a/endpoints/%s/drain" % a3.address)
    assert status == 200, body
    # Two slow requests: round robin over a1 and a2 puts one of them in flight on a2.
    slow = []

    def slow_request():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/delay?ms=1500")
        r = conn.getresponse()
        slow.append((r.status, r.read()))

    threads = [threading.Thread(target=slow_request) for _ in range(2)]
    for t in threads:
        t.start()
    # a slow one and this /stats request
    wait_until(lambda: a2.stats()["in_flight"] == 2, message="a slow request in flight on a2")
    cfg = fixed_port(config([a1, a3]), port)
    status, _, body = admin(sl, "PUT", "/config", json.dumps(cfg).encode())
    assert status == 200, body
    # New requests avoid the removed a2 and the still-draining a3; the slow request finishes.
    for _ in range(10):
        assert who(port) == "a1"
    for t in threads:
        t.join()
    assert [st for st, _ in slow] == [200, 200], slow
    clusters = json.loads(admin(sl, "GET", "/clusters")[2])
    eps = {e["address"]: e for c in clusters["clusters"] if c["name"] == "a" for e in c["endpoints"]}
    assert set(eps) == {a1.address, a3.address}, eps
    assert eps[a3.address]["draining"] and not eps[a1.address]["draining"], eps
    # The removed endpoint's connections close once their exchange is done.
    # (/stats itself holds one connection; the one of the previous poll may still be closing.)
    wait_until(lambda: a2.stats()["connections_open"] == 1, message="a2 left with only the /stats connection")
    sl.stop()


if __name__ == "__main__":
    run_cases()
