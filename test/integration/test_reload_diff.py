"""What a reload changed: POST /reload and PUT /config answer {"generation": N, "changes": {...}}
naming the listeners, clusters and routes (router virtual hosts) added, removed and changed; the
log line says the same (SIGHUP included), and GET /status keeps the history."""
import json
import signal

from harness import Sluice, Upstream, case, http_request, run_cases, wait_until

KEY = "diff-key"
EMPTY = {"added": [], "removed": [], "changed": []}


def base(up):
    return {"admin": {"address": "127.0.0.1:0", "api_key": KEY},
            "workers": 1,
            "shutdown": {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000},
            "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
                {"type": "router", "config": {"virtual_hosts": [
                    {"name": "api", "domains": ["api.test"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},
                    {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]}]}}]}],
            "clusters": [{"name": "a", "endpoints": [{"address": up.address}]},
                         {"name": "b", "endpoints": [{"address": up.address}]}]}


def admin(sl, method, path, body=None):
    return http_request(sl.admin_port, method, path, {"Authorization": "Bearer " + KEY}, body)


def pin_port(cfg, sl):
    cfg["listeners"][0]["address"] = "127.0.0.1:%d" % sl.port("web")
    return cfg


@case
def put_config_answers_what_changed():
    up = Upstream()
    sl = Sluice(base(up))
    cfg = pin_port(base(up), sl)
    status, _, body = admin(sl, "PUT", "/config", json.dumps(cfg))
    assert status == 200, body
    doc = json.loads(body)
    # The listener's address was rewritten with the port it got: that is a change of it.
    assert doc == {"generation": 2, "changes": {"listeners": {"added": [], "removed": [], "changed": ["web"]},
                                                "clusters": EMPTY, "routes": EMPTY, "settings": [],
                                                "restart_required": []}}, doc
    wait_until(lambda: "config generation 2 is live; changes: listeners ~web" in sl.stderr_text(), message='log line: "config generation 2 is live; changes: listeners ~web" in sl')  # log lines are written by a writer thread
    # Nothing changed.
    status, _, body = admin(sl, "PUT", "/config", json.dumps(cfg))
    assert json.loads(body) == {"generation": 3, "changes": {"listeners": EMPTY, "clusters": EMPTY,
                                                             "routes": EMPTY, "settings": [],
                                                             "restart_required": []}}, body
    wait_until(lambda: "config generation 3 is live; changes: no changes" in sl.stderr_text(), message='log line: "config generation 3 is live; changes: no changes" in sl.std')  # log lines are written by a writer thread
    # A route edit is a change of that virtual host, not of the listener; a new virtual host,
    # a removed cluster, a changed cluster, a new listener.
    cfg["listeners"][0]["filters"][0]["config"]["virtual_hosts"][0]["routes"][0]["cluster"] = "b"
    del cfg["listeners"][0]["filters"][0]["config"]["virtual_hosts"][1]
    cfg["listeners"][0]["filters"][0]["config"]["virtual_hosts"].append(
        {"name": "new", "domains": ["new.test"], "routes": [{"match": {"prefix": "/"}, "cluster": "b"}]})
    cfg["clusters"] = [{"name": "b", "connect_timeout_ms": 300, "endpoints": [{"address": up.address}]},
                       {"name": "c", "endpoints": [{"address": up.address}]}]
    cfg["listeners"].append({"name": "admin2", "address": "127.0.0.1:0", "filters": [
        {"type": "router", "name": "r2", "config": {"virtual_hosts": [
            {"name": "x", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "c"}]}]}}]})
    status, _, body = admin(sl, "PUT", "/config", json.dumps(cfg))
    assert status == 200, body
    doc = json.loads(body)
    assert doc["generation"] == 4, doc
    assert doc["changes"] == {
        "listeners": {"added": ["admin2"], "removed": [], "changed": []},
        "clusters": {"added": ["c"], "removed": ["a"], "changed": ["b"]},
        "routes": {"added": ["web/new", "admin2/r2/x"], "removed": ["web/all"], "changed": ["web/api"]},
        "settings": [], "restart_required": [],
    }, doc
    line = ("config generation 4 is live; changes: listeners +admin2; clusters +c -a ~b; "
            "routes +web/new +admin2/r2/x -web/all ~web/api")
    wait_until(lambda: line in sl.stderr_text(),  # lines go through the writer thread
               message="the reload's change line")
    # The route change is live.
    assert http_request(sl.port("web"), "GET", "/x", {"Host": "api.test"})[0] == 200
    sl.stop()


@case
def post_reload_and_sighup_say_what_changed():
    up = Upstream()
    sl = Sluice(base(up))
    cfg = pin_port(base(up), sl)
    cfg["clusters"].pop()  # remove b
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)
    status, _, body = admin(sl, "POST", "/reload")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["generation"] == 2 and doc["changes"]["clusters"] == {"added": [], "removed": ["b"], "changed": []}, doc
    # SIGHUP: the log line says it.
    cfg["clusters"].append({"name": "d", "endpoints": [{"address": up.address}]})
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)
    sl.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "config generation 3 is live; changes: clusters +d" in sl.stderr_text(),
               message="the SIGHUP reload's log line")
    # A rejected reload changes nothing, answers the errors (no "changes"), and the history
    # keeps every outcome, newest first.
    status, _, body = admin(sl, "PUT", "/config", '{"listeners": 1}')
    assert status == 400 and "changes" not in json.loads(body), body
    status, _, body = admin(sl, "GET", "/status")
    hist = json.loads(body)["reloads"]
    assert [(r["generation"], r["result"]) for r in hist] == [
        (None, "failure"), (3, "success"), (2, "success"), (1, "success")], hist
    assert hist[0]["errors"] and hist[0]["changes"] is None, hist[0]
    assert hist[1]["changes"]["clusters"]["added"] == ["d"] and hist[1]["summary"] == "clusters +d", hist[1]
    assert hist[3]["initial"] is True and hist[3]["changes"]["listeners"]["added"] == ["web"], hist[3]
    assert all(r["time"].endswith("Z") and r["time_unix_ms"] > 0 for r in hist), hist
    sl.stop()


if __name__ == "__main__":
    run_cases()
