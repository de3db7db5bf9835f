"""Process settings on reload (SIGHUP, POST /reload, PUT /config): a rotated admin.api_key takes
effect (the old key gets 401), shutdown budgets apply to the next shutdown, a changed admin
address refuses the reload (it needs a restart), and workers / startup changes are reported in
the answer's changes.restart_required and on the log instead of being dropped silently."""
import json
import os
import signal

from harness import Sluice, Upstream, case, http_request, run_cases, wait_until


def base(up, key):
    return {"admin": {"address": "127.0.0.1:0", "api_key": key},
            "workers": 1,
            "shutdown": {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000},
            "listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
                {"type": "router", "config": {"virtual_hosts": [
                    {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]}]}}]}],
            "clusters": [{"name": "a", "endpoints": [{"address": up.address}]}]}


def pinned(up, key, sl):
    cfg = base(up, key)
    cfg["listeners"][0]["address"] = "127.0.0.1:%d" % sl.port("web")
    return cfg


def admin(sl, key, method, path, body=None):
    return http_request(sl.admin_port, method, path, {"Authorization": "Bearer " + key}, body)


def write(sl, cfg):
    with open(sl.config_path, "w") as f:
        json.dump(cfg, f)


@case
def api_key_rotation_takes_effect_at_reload():
    up = Upstream()
    sl = Sluice(base(up, "old-key"))
    # POST /reload of a file with a new inline key.
    write(sl, pinned(up, "new-key", sl))
    status, _, body = admin(sl, "old-key", "POST", "/reload")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["changes"]["settings"] == ["/admin/api_key"] and doc["changes"]["restart_required"] == [], doc
    assert b"new-key" not in body and b"old-key" not in body, body
    assert admin(sl, "old-key", "GET", "/stats")[0] == 401
    assert admin(sl, "new-key", "GET", "/stats")[0] == 200
    assert http_request(sl.admin_port, "GET", "/ready")[0] == 200  # still open without a key
    # A key read from a file: the config text does not change, the file does (SIGHUP).
    key_file = os.path.join(sl.dir, "admin.key")
    with open(key_file, "w") as f:
        f.write("file-key-1\n")
    cfg = pinned(up, {"file": key_file}, sl)
    write(sl, cfg)
    assert admin(sl, "new-key", "POST", "/reload")[0] == 200
    assert admin(sl, "file-key-1", "GET", "/stats")[0] == 200
    with open(key_file, "w") as f:
        f.write("file-key-2\n")
    sl.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "config generation 4 is live; changes: settings ~/admin/api_key" in sl.stderr_text(),
               message="the SIGHUP reload's log line")
    assert admin(sl, "file-key-1", "GET", "/stats")[0] == 401
    assert admin(sl, "file-key-2", "GET", "/stats")[0] == 200
    assert "file-key" not in sl.stderr_text()
    sl.stop()


@case
def a_new_admin_address_refuses_the_reload():
    up = Upstream()
    sl = Sluice(base(up, "k"))
    cfg = pinned(up, "k", sl)
    cfg["admin"]["address"] = "127.0.0.1:%d" % sl.admin_port  # the port it got: the same address
    cfg["clusters"][0]["connect_timeout_ms"] = 400
    status, _, body = admin(sl, "k", "PUT", "/config", json.dumps(cfg))
    assert status == 200 and json.loads(body)["changes"]["settings"] == [], body
    for admin_cfg in ({"address": "127.0.0.2:0", "api_key": "k"}, None):
        moved = dict(cfg)
        if admin_cfg is None:
            del moved["admin"]
        else:
            moved["admin"] = admin_cfg
        status, _, body = admin(sl, "k", "PUT", "/config", json.dumps(moved))
        assert status == 400, body
        errors = json.loads(body)["errors"]
        assert len(errors) == 1 and errors[0].startswith(
            "/admin/address: the admin address cannot change without a restart (running: 127.0.0.1:%d, new: %s)"
            % (sl.admin_port, "127.0.0.2:0" if admin_cfg else "no admin port")), errors
    # The old config stays live and the admin port keeps answering.
    status, _, body = admin(sl, "k", "GET", "/status")
    assert status == 200 and json.loads(body)["reloads"][0]["result"] == "failure", body
    wait_until(lambda: "reload rejected, the live config stays: /admin/address" in sl.stderr_text(), message='log line: "reload rejected, the live config stays: /admin/address" in ')  # log lines are written by a writer thread
    sl.stop()


@case
def restart_only_settings_are_reported_and_shutdown_budgets_apply():
    up = Upstream()
    sl = Sluice(base(up, "k"))
    cfg = pinned(up, "k", sl)
    cfg["workers"] = 3
    cfg["startup"] = {"wait_for_config_ms": 1234}
    cfg["shutdown"] = {"pre_drain_ms": 50, "drain_ms": 1500, "teardown_ms": 700}
    cfg["overload"] = {"max_requests_per_worker": 100}
    write(sl, cfg)
    status, _, body = admin(sl, "k", "POST", "/reload")
    assert status == 200, body
    changes = json.loads(body)["changes"]
    assert changes["settings"] == ["/workers", "/startup/wait_for_config_ms", "/shutdown/pre_drain_ms",
                                   "/shutdown/drain_ms", "/shutdown/teardown_ms",
                                   "/overload/max_requests_per_worker"], changes
    assert changes["restart_required"] == ["/workers", "/startup/wait_for_config_ms"], changes
    wait_until(lambda: "restart required: /workers /startup/wait_for_config_ms" in sl.stderr_text(),
               message="the restart-required log line")  # lines go through the writer thread
    log = sl.stderr_text()
    assert "reload: /workers, /startup/wait_for_config_ms changed but take(s) effect only at the next start" in log, log[-2000:]
    assert "restart required: /workers /startup/wait_for_config_ms" in log, log[-2000:]
    # Still one worker; reported again on the next reload, since the file still differs.
    status, _, body = admin(sl, "k", "POST", "/reload")
    assert json.loads(body)["changes"]["restart_required"] == ["/workers", "/startup/wait_for_config_ms"], body
    # The shutdown budgets of the reloaded config are the ones used.
    sl.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: shutting down (pre_drain_ms=50 drain_ms=1500 teardown_ms=700)" in sl.stderr_text(),
               message="the shutdown line with the reloaded budgets")
    assert sl.wait_exit() == 0
    sl.check_clean()


@case
def workers_on_the_command_line_win_without_a_report():
    up = Upstream()
    sl = Sluice(base(up, "k"), extra_args=["--workers", "2"])
    cfg = pinned(up, "k", sl)
    cfg["workers"] = 4
    write(sl, cfg)
    status, _, body = admin(sl, "k", "POST", "/reload")
    assert status == 200 and json.loads(body)["changes"]["restart_required"] == [], body
    sl.stop()


if __name__ == "__main__":
    run_cases()
