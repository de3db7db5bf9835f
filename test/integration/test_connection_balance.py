"""listeners[].connection_balance: "exact" hands each new connection to the worker with the
fewest open connections on the listener, so kept-open connections spread one by one over the
workers (the kernel's SO_REUSEPORT hash, the default, splits them like coin tosses). Counted
with sluice_worker_requests_total{worker}, sluice_worker_connections_active{worker} and
sluice_downstream_connections_active."""
import http.client
import re
import time

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, run_validate, simple_config

KEY = "balance-key"


def balanced_config(up, balance="exact"):
    cfg = simple_config(up.address, listener_extra={"connection_balance": balance})
    cfg["admin"] = {"address": "127.0.0.1:0", "api_key": KEY}
    return cfg


def metrics(sl):
    return http_request(sl.admin_port, "GET", "/stats/prometheus",
                        {"Authorization": "Bearer " + KEY})[2].decode()


def per_worker(sl, want_total):
    deadline = time.time() + 5 * SLOW
    while True:
        text = metrics(sl)
        per = {int(m.group(1)): int(float(m.group(2))) for m in
               re.finditer(r'sluice_worker_requests_total\{worker="(\d+)"\} (\S+)', text)}
        if sum(per.values()) >= want_total or time.time() > deadline:
            return per, text
        time.sleep(0.05)


def open_per_worker(text):
    """sluice_worker_connections_active{worker}: the connections each worker holds now."""
    return {int(m.group(1)): int(float(m.group(2))) for m in
            re.finditer(r'sluice_worker_connections_active\{worker="(\d+)"\} (\S+)', text)}


def open_and_ask(port, n):
    """n keep-alive connections opened one after the other, each answered before the next opens
    (so the previous one is counted), all kept open."""
    conns = []
    for i in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW)
        status, _, _ = http_request(port, "GET", "/c%d" % i, conn=c)
        assert status == 200, status
        conns.append(c)
    return conns


@case
def exact_balance_spreads_kept_open_connections_evenly_over_three_workers():
    up = Upstream()
    sl = Sluice(balanced_config(up), workers=3)
    conns = open_and_ask(sl.port(), 30)
    per, text = per_worker(sl, 30)
    assert per == {0: 10, 1: 10, 2: 10}, per
    assert re.search(r'sluice_downstream_connections_active\{listener="web"\} 30\b', text), text
    assert open_per_worker(text) == {0: 10, 1: 10, 2: 10}, text
    # Handed-over connections keep serving: a second request on each, then the counts again.
    for i, c in enumerate(conns):
        assert http_request(sl.port(), "GET", "/again%d" % i, conn=c)[0] == 200
    per, _ = per_worker(sl, 60)
    assert per == {0: 20, 1: 20, 2: 20}, per
    for c in conns:
        c.close()
    # Closed connections give their share back: the next 30 spread evenly again.
    deadline = time.time() + 5 * SLOW
    while not re.search(r'sluice_downstream_connections_active\{listener="web"\} 0\b', metrics(sl)):
        assert time.time() < deadline, metrics(sl)
        time.sleep(0.05)
    assert open_per_worker(metrics(sl)) == {0: 0, 1: 0, 2: 0}
    conns = open_and_ask(sl.port(), 30)
    per, _ = per_worker(sl, 90)
    assert per == {0: 30, 1: 30, 2: 30}, per
    for c in conns:
        c.close()
    sl.stop()


@case
def exact_balance_applies_listener_limits_to_handed_over_connections():
    up = Upstream()
    cfg = balanced_config(up)
    cfg["listeners"][0]["limits"] = {"max_connections": 4}
    sl = Sluice(cfg, workers=2)
    conns = open_and_ask(sl.port(), 4)
    # The fifth is over the listener's limit, whichever worker it lands on: closed at accept.
    c = http.client.HTTPConnection("127.0.0.1", sl.port(), timeout=10 * SLOW)
    try:
        c.request("GET", "/over")
        c.getresponse()
        refused = False
    except (ConnectionError, http.client.HTTPException, OSError):
        refused = True
    assert refused
    text = metrics(sl)
    assert re.search(r'sluice_overload_actions_total\{action="refuse_connection",'
                     r'reason="listener_max_connections"\} 1\b', text), text
    per, _ = per_worker(sl, 4)
    assert per == {0: 2, 1: 2}, per
    for c in conns:
        c.close()
    sl.stop()


@case
def connection_balance_must_be_kernel_or_exact():
    up = Upstream()
    rc, out = run_validate(balanced_config(up, balance="round_robin"))
    assert rc != 0
    assert ('/listeners/0/connection_balance: expected one of kernel, exact, got "round_robin"'
            in out), out
    rc, out = run_validate(balanced_config(up, balance="kernel"))
    assert rc == 0, out


if __name__ == "__main__":
    run_cases()
