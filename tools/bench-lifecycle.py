#!/usr/bin/env python3
"""Lifecycle figures for BENCHMARKS.md, measured from outside the process:

  start-up  time from exec to the listener accepting a TCP connection, and to GET /ready = 200,
            for configs of 10, 1,000 and 20,000 routes (half Hyperscan regexes, half prefixes);
  scrape    time of GET /stats/prometheus and GET /stats with 1,000 clusters of 3 endpoints each
            (every per-cluster and per-endpoint family of SPEC section 5), and the exposition's size;
  reloads   with --upstream and wrk installed: wrk -t1 -c16 through sluice (1 worker) to the test
            upstream, first without reloads, then while PUT /config replaces the config every
            200 ms (same listener), in the same run: requests/s, p50/p99, errors, reloads done.

Usage: tools/bench-lifecycle.py SLUICE_BINARY [--runs N] [--scrapes N] [--upstream UPSTREAM_BINARY]
The start-up and scrape parts need nothing but python3 (their clusters point at closed ports).
"""
import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def routes_config(n, port, admin_port):
    routes = []
    for i in range(n - 1):
        if i % 2 == 0:
            routes.append({"match": {"regex": "^/r%d/[a-z]+/[0-9]{1,8}$" % i}, "cluster": "up"})
        else:
            routes.append({"match": {"prefix": "/p%d/" % i}, "cluster": "up"})
    routes.append({"match": {"prefix": "/"}, "cluster": "up"})
    return {"workers": 1, "admin": {"address": "127.0.0.1:%d" % admin_port},
            "listeners": [{"name": "web", "address": "127.0.0.1:%d" % port, "filters": [
                {"type": "router", "config": {"virtual_hosts": [
                    {"name": "v", "domains": ["*"], "routes": routes}]}}]}],
            "clusters": [{"name": "up", "endpoints": [{"address": "127.0.0.1:9"}]}]}


def clusters_config(n, port, admin_port):
    clusters = [{"name": "c%d" % i, "endpoints": [
        {"address": "127.0.0.%d:%d" % (1 + j, 20000 + i)} for j in range(3)]} for i in range(n)]
    return {"workers": 1, "admin": {"address": "127.0.0.1:%d" % admin_port},
            "listeners": [{"name": "web", "address": "127.0.0.1:%d" % port, "filters": [
                {"type": "router", "config": {"virtual_hosts": [
                    {"name": "v", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/c%d/" % i}, "cluster": "c%d" % i}
                        for i in range(n)]}]}}]}],
            "clusters": clusters}


def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def start(binary, cfg, directory):
    path = os.path.join(directory, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    err = open(os.path.join(directory, "stderr.log"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "run", "-c", path, "--log-level", "info"],
                            stdout=subprocess.DEVNULL, stderr=err)
    return proc, t0, err


def stop(proc, err):
    proc.terminate()
    proc.wait(timeout=60)
    err.close()


def startup_once(binary, n):
    port, admin = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        proc, t0, err = start(binary, routes_config(n, port, admin), d)
        accept_s = None
        while accept_s is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                accept_s = time.monotonic() - t0
            except OSError:
                time.sleep(0.0005)
        while True:
            try:
                if get(admin, "/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.001)
        ready_s = time.monotonic() - t0
        stop(proc, err)
        with open(os.path.join(d, "stderr.log")) as f:
            log = f.read()
        built = re.search(r"built \((\d+) ms after start\)", log)
        return accept_s * 1000, ready_s * 1000, int(built.group(1)) if built else -1


def scrape(binary, n, scrapes):
    port, admin = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        proc, _, err = start(binary, clusters_config(n, port, admin), d)
        while True:
            try:
                if get(admin, "/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        out = {}
        for path in ("/stats/prometheus", "/stats"):
            times, size = [], 0
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=30)
            for _ in range(scrapes):
                t = time.monotonic()
                c.request("GET", path)
                r = c.getresponse()
                body = r.read()
                times.append((time.monotonic() - t) * 1000)
                size = len(body)
            c.close()
            times.sort()
            series = sum(1 for line in body.decode().splitlines()
                         if line and not line.startswith("#")) if path != "/stats" else None
            out[path] = (statistics.median(times), times[int(len(times) * 0.99) - 1], size, series)
        stop(proc, err)
        return out


def wrk(port, seconds):
    r = subprocess.run(["wrk", "-t1", "-c16", "-d%ds" % seconds, "--latency",
                        "http://127.0.0.1:%d/x" % port], capture_output=True, text=True, check=True)
    out = r.stdout

    def lat(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in m.groups()) if m else 0
    return rps, lat(50), lat(99), errors


def reloads(binary, upstream_bin, seconds=8):
    import threading
    up = subprocess.Popen([upstream_bin, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    up_addr = re.search(r"listening (\S+)", up.stdout.readline()).group(1)
    port, admin = free_port(), free_port()
    cfg = routes_config(10, port, admin)
    cfg["clusters"][0]["endpoints"][0]["address"] = up_addr
    with tempfile.TemporaryDirectory() as d:
        proc, _, err = start(binary, cfg, d)
        while True:
            try:
                if get(admin, "/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        wrk(port, 2)  # warm-up
        quiet = wrk(port, seconds)
        stop_flag = threading.Event()
        done = [0, 0]
        body = json.dumps(cfg).encode()

        def reloader():
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=30)
            while not stop_flag.wait(0.2):
                c.request("PUT", "/config", body=body)
                r = c.getresponse()
                r.read()
                done[0 if r.status == 200 else 1] += 1
            c.close()
        t = threading.Thread(target=reloader)
        t.start()
        busy = wrk(port, seconds)
        stop_flag.set()
        t.join()
        stop(proc, err)
    up.terminate()
    up.wait()
    return quiet, busy, done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--upstream", help="sluice-test-upstream binary: also measure reload latency")
    ap.add_argument("--only-reloads", action="store_true")
    a = ap.parse_args()
    if a.upstream:
        quiet, busy, done = reloads(a.binary, a.upstream)
        print("| wrk -t1 -c16, 8 s, 1 worker | requests/s | p50 (ms) | p99 (ms) | errors |")
        print("|---|---:|---:|---:|---:|")
        print("| no reloads | %.0f | %.3f | %.3f | %d |" % quiet)
        print("| PUT /config every 200 ms (%d done, %d refused) | %.0f | %.3f | %.3f | %d |" % (
            (done[0], done[1]) + busy))
        print()
        if a.only_reloads:
            return
    print("| routes | exec to accepting (ms) | exec to /ready 200 (ms) | config built (log, ms) |")
    print("|---:|---:|---:|---:|")
    for n in (10, 1000, 20000):
        rows = [startup_once(a.binary, n) for _ in range(a.runs)]
        acc = [r[0] for r in rows]
        rdy = [r[1] for r in rows]
        blt = [r[2] for r in rows]
        print("| %s | %.1f (%.1f–%.1f) | %.0f (%.0f–%.0f) | %d–%d |" % (
            format(n, ","), statistics.median(acc), min(acc), max(acc), statistics.median(rdy),
            min(rdy), max(rdy), min(blt), max(blt)))
    print()
    res = scrape(a.binary, 1000, a.scrapes)
    print("| 1,000 clusters × 3 endpoints | median (ms) | p99 (ms) | bytes | series |")
    print("|---|---:|---:|---:|---:|")
    for path, (med, p99, size, series) in res.items():
        print("| GET %s | %.2f | %.2f | %s | %s |" % (path, med, p99, format(size, ","),
                                                   format(series, ",") if series else "–"))


if __name__ == "__main__":
    main()
