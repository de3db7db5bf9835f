"""Start-up with a large route table says how far it got: the router logs
"building config: compiled N/M routes" at info level while it parses, and a closing line."""
import re

from harness import Sluice, Upstream, case, http_request, run_cases


@case
def a_large_route_table_logs_progress():
    up = Upstream()
    routes = [{"match": {"prefix": "/p%d/" % i}, "cluster": "up"} for i in range(25000)]
    cfg = {"admin": {"address": "127.0.0.1:0"},
           "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
               {"type": "router", "config": {"virtual_hosts": [
                   {"name": "v", "domains": ["*"], "routes": routes}]}}]}],
           "clusters": [{"name": "up", "endpoints": [{"address": up.address}]}]}
    sl = Sluice(cfg)
    log = sl.stderr_text()
    lines = re.findall(r"info \[filter router\] building config: compiled (\d+)/(\d+) routes", log)
    assert ("10000", "25000") in lines and ("20000", "25000") in lines, log[-3000:]
    done = [int(a) for a, _ in lines]
    assert done == sorted(done), lines  # it only goes forward
    assert re.search(r"building config: compiled 25000 routes \(0 regexes\) in \d+ ms", log), log[-3000:]
    # ... and before the config went live.
    assert log.index("compiled 25000 routes") < log.index("config generation 1 built"), log[-3000:]
    assert http_request(sl.port(), "GET", "/p24999/x")[0] == 200
    sl.stop()


@case
def a_small_route_table_logs_no_progress():
    up = Upstream()
    cfg = {"listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
               {"type": "router", "config": {"virtual_hosts": [
                   {"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}]}],
           "clusters": [{"name": "up", "endpoints": [{"address": up.address}]}]}
    sl = Sluice(cfg)
    assert "building config" not in sl.stderr_text(), sl.stderr_text()
    sl.stop()


if __name__ == "__main__":
    run_cases()
