"""ratelimit through the real binary: local buckets (burst, 429 + headers, per-key separation,
metrics) and the Redis backend against a real redis-server (two sluice processes sharing one
limit; failure_mode allow/deny while Redis is down; recovery)."""
import json
import socket
import subprocess

import harness
from harness import (SLOW, Sluice, Upstream, case, free_port, header, http_request, run_cases,
                     run_validate, simple_config, wait_until)


def rl_config(up, rl, workers=2, admin=False):
    cfg = simple_config(up.address, filters_before=[{"type": "ratelimit", "config": rl}])
    cfg["workers"] = workers
    if admin:
        cfg["admin"] = {"address": "127.0.0.1:0"}
    return cfg


def get(sl, path="/api/x", headers=None):
    return http_request(sl.port(), "GET", path, headers or {})


class RedisServer:
    """redis-server on a free loopback port, no persistence; killed when the case ends."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness._procs.append(self.proc)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_until(up, timeout=10, message="redis-server listening")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def redis_rl(port, mode="allow", burst=5, rpm=60):
    return {"rules": [{"match": {"prefix": "/api"}, "key": {"header": "x-user"},
                       "requests_per_minute": rpm, "burst": burst}],
            "response_headers": True,
            "backend": {"redis": {"address": "127.0.0.1:%d" % port, "prefix": "it:",
                                  "timeout_ms": 200 * SLOW, "failure_mode": mode}}}


@case
def local_burst_then_429_with_headers():
    up = Upstream()
    sl = Sluice(rl_config(up, {"rules": [{"match": {"prefix": "/api"}, "key": {"header": "x-api-key"},
                                          "requests_per_minute": 6, "burst": 3}],
                               "response_headers": True}, admin=True))
    for i in range(3):
        status, hs, _ = get(sl, headers={"x-api-key": "k1"})
        assert status == 200, status
        assert header(hs, "ratelimit-limit") == "3", hs
        assert header(hs, "ratelimit-remaining") == str(2 - i), hs
        assert header(hs, "ratelimit-reset") == str(10 * (i + 1)), hs
    status, hs, body = get(sl, headers={"x-api-key": "k1"})
    assert status == 429, status
    assert header(hs, "retry-after") == "10", hs
    assert header(hs, "ratelimit-limit") == "3" and header(hs, "ratelimit-remaining") == "0", hs
    assert header(hs, "ratelimit-reset") == "30", hs
    # Another key has its own bucket; a path no rule matches is not limited.
    assert get(sl, headers={"x-api-key": "k2"})[0] == 200
    status, hs, _ = get(sl, path="/free", headers={"x-api-key": "k1"})
    assert status == 200 and header(hs, "ratelimit-limit") is None, hs
    metrics = http_request(sl.admin_port, "GET", "/metrics")[2].decode()
    assert 'sluice_ratelimit_limited_total{filter="ratelimit"} 1' in metrics, metrics
    sl.stop()


@case
def local_key_falls_back_to_client_ip_and_workers_share_buckets():
    up = Upstream()
    sl = Sluice(rl_config(up, {"rules": [{"key": {"header": "x-api-key"}, "requests_per_minute": 1,
                                          "burst": 4}]}, workers=2))
    # New connections land on either worker: the bucket is per process, not per worker.
    statuses = [get(sl, "/")[0] for _ in range(6)]
    assert statuses.count(200) == 4 and statuses.count(429) == 2, statuses
    assert get(sl, "/", {"x-api-key": "other"})[0] == 200
    sl.stop()


@case
def local_config_errors():
    up = Upstream()
    for rl, pointer in (
            ({"rules": [{"requests_per_minute": 0, "burst": 1}]}, "/rules/0/requests_per_minute"),
            ({"rules": [{"requests_per_minute": 1, "burst": 0}]}, "/rules/0/burst"),
            ({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {"ip": True}}]}, "/rules/0/key/ip"),
            ({"rules": [{"requests_per_minute": 1, "burst": 1}],
              "backend": {"redis": {"address": "redis:6379"}}}, "/backend/redis/address"),
            ({"rules": [{"requests_per_minute": 1, "burst": 1}],
              "backend": {"redis": {"address": "127.0.0.1:6379", "failure_mode": "maybe"}}},
             "/backend/redis/failure_mode")):
        code, out = run_validate(rl_config(up, rl))
        assert code == 1 and "/listeners/0/filters/0/config" + pointer in out, (rl, out)


@case
def local_429_is_logged_with_the_rl_flag():
    up = Upstream()
    cfg = simple_config(up.address,
                        filters_before=[{"type": "access_log", "config": {"path": "stdout", "flush_ms": 20}},
                                        {"type": "ratelimit", "config": {"rules": [
                                            {"requests_per_minute": 1, "burst": 1}]}}])
    sl = Sluice(cfg)
    assert get(sl, "/a")[0] == 200
    assert get(sl, "/b")[0] == 429

    def lines():
        out = [json.loads(l) for l in sl.stdout_text().splitlines() if l.startswith("{")]
        return out if len(out) == 2 else None
    a, b = sorted(wait_until(lines, message="two access-log lines"), key=lambda r: r["path"])
    assert a["status"] == 200 and "RL" not in a["flags"], a
    assert b["status"] == 429 and "RL" in b["flags"] and "LR" in b["flags"], b
    sl.stop()


@case
def redis_two_processes_share_one_limit():
    redis = RedisServer()
    up = Upstream()
    # One token a minute: no refill can land between the requests, however slow the build.
    a = Sluice(rl_config(up, redis_rl(redis.port, burst=5, rpm=1)))
    b = Sluice(rl_config(up, redis_rl(redis.port, burst=5, rpm=1)))
    results = []
    for i in range(8):
        sl = a if i % 2 == 0 else b
        status, hs, _ = get(sl, headers={"x-user": "shared"})
        results.append(status)
        if status == 200:
            assert header(hs, "ratelimit-limit") == "5", hs
        else:
            assert status == 429 and header(hs, "retry-after") is not None, hs
            assert header(hs, "ratelimit-remaining") == "0", hs
    assert results.count(200) == 5 and results.count(429) == 3, results
    assert results[:5] == [200] * 5, results
    # Another user is not affected.
    assert get(b, headers={"x-user": "someone-else"})[0] == 200
    a.stop()
    b.stop()


def failure_mode_case(mode):
    redis = RedisServer()
    up = Upstream()
    sl = Sluice(rl_config(up, redis_rl(redis.port, mode=mode, burst=100), admin=True))
    status, hs, _ = get(sl, headers={"x-user": "u"})
    assert status == 200 and header(hs, "ratelimit-limit") == "100", (status, hs)
    redis.stop()
    want = 200 if mode == "allow" else 429
    for _ in range(4):
        status, hs, _ = get(sl, headers={"x-user": "u"})
        assert status == want, (mode, status, hs)
        assert header(hs, "ratelimit-limit") is None, hs
    metrics = http_request(sl.admin_port, "GET", "/metrics")[2].decode()
    assert 'sluice_ratelimit_redis_errors_total{filter="ratelimit",kind="connection"}' in metrics, metrics
    # Redis comes back on the same port: the workers reconnect (with backoff) by themselves.
    redis.start()

    def answered_by_redis():
        status, hs, _ = get(sl, headers={"x-user": "u"})
        return status == 200 and header(hs, "ratelimit-limit") == "100"
    wait_until(answered_by_redis, timeout=10, interval=0.1, message="answers from Redis again")
    sl.stop()


@case
def redis_backend_survives_reloads():
    redis = RedisServer()
    up = Upstream()
    cfg = rl_config(up, redis_rl(redis.port, burst=5), admin=True)
    sl = Sluice(cfg)
    status, hs, _ = get(sl, headers={"x-user": "r"})
    assert status == 200 and header(hs, "ratelimit-remaining") == "4", hs
    # A new config (a bigger burst) replaces the worker states: the old Redis connections are
    # closed, new ones made; the bucket in Redis carries on.
    for burst in (50, 60, 70):
        cfg["listeners"][0]["filters"][0]["config"] = redis_rl(redis.port, burst=burst)
        status, _, body = http_request(sl.admin_port, "PUT", "/config", {}, json.dumps(cfg).encode())
        assert status == 200, body
        status, hs, _ = get(sl, headers={"x-user": "r"})
        assert status == 200 and header(hs, "ratelimit-limit") == str(burst), hs
    sl.stop()


@case
def redis_down_failure_mode_allow():
    failure_mode_case("allow")


@case
def redis_down_failure_mode_deny():
    failure_mode_case("deny")


@case
def redis_reached_through_a_cluster_by_name():
    """"cluster" instead of "address": the cluster manager resolves the Redis hostname
    (localhost here) before the config goes live, and every connect picks an endpoint."""
    redis = RedisServer()
    up = Upstream()
    rl = redis_rl(redis.port, burst=3, rpm=1)  # no refill between the two processes' requests
    del rl["backend"]["redis"]["address"]
    rl["backend"]["redis"]["cluster"] = "redis"
    cfg = rl_config(up, rl, admin=True)
    cfg["clusters"].append({"name": "redis", "endpoints": [{"address": "localhost:%d" % redis.port}]})
    sl = Sluice(cfg)
    statuses = [get(sl, headers={"x-user": "by-name"})[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses
    # The buckets are in Redis: another process with the plain address shares them.
    other = Sluice(rl_config(up, redis_rl(redis.port, burst=3, rpm=1)))
    assert get(other, headers={"x-user": "by-name"})[0] == 429
    other.stop()
    sl.stop()
    # An unknown cluster is a config error with its pointer.
    cfg["clusters"].pop()
    rc, out = run_validate(cfg)
    assert rc == 1 and "/listeners/0/filters/0/config/backend/redis/cluster" in out, out


if __name__ == "__main__":
    run_cases()
