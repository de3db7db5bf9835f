"""Hostname endpoints are re-resolved periodically off the data path; a changed address gets
the new connections while the old one drains (in-flight requests finish, nothing fails).

Name resolution is redirected to a hosts file the test controls with nss_wrapper
(Debian libnss-wrapper), so the test needs no DNS server and no root."""
import json
import os
import threading
import time

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until

NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"


class Hosts:
    def __init__(self, directory):
        self.path = os.path.join(directory, "hosts")
        self.version = 0

    def write(self, text):
        # A new file renamed over the old one, with a later mtime, so the wrapper reloads it.
        self.version += 1
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        stamp = time.time() + self.version * 2
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, self.path)

    def env(self):
        # DISABLE_DEEPBIND: its fallback to libc's resolver (a name missing from the file) must not
        # dlopen libc with RTLD_DEEPBIND, which AddressSanitizer refuses.
        env = {"LD_PRELOAD": NSS_WRAPPER, "NSS_WRAPPER_HOSTS": self.path,
               "NSS_WRAPPER_DISABLE_DEEPBIND": "1"}
        if os.environ.get("SLUICE_SANITIZE"):
            env["ASAN_OPTIONS"] = "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")
        return env


def who(port, path="/x"):
    status, _, body = http_request(port, "GET", path)
    assert status == 200, (status, body)
    return json.loads(body)["name"]


def endpoint_info(sl):
    body = json.loads(http_request(sl.admin_port, "GET", "/clusters")[2])
    return body["clusters"][0]["endpoints"][0]


@case
def a_changed_address_takes_new_requests_while_the_old_one_drains():
    assert os.path.exists(NSS_WRAPPER), "libnss-wrapper is not installed (tools/install-deps.sh)"
    one = Upstream("one")
    two = Upstream("two", extra_args=["--listen", "127.0.0.2:%d" % one.port])
    hosts = Hosts(tmpdir())
    hosts.write("127.0.0.1 backend.sluice.test\n")
    cfg = simple_config("backend.sluice.test:%d" % one.port, admin={"address": "127.0.0.1:0"},
                        clusters=[{"name": "up", "dns_refresh_ms": 200,
                                   "endpoints": [{"address": "backend.sluice.test:%d" % one.port}]}])
    sl = Sluice(cfg, env=hosts.env())
    port = sl.port()
    assert who(port) == "one"
    info = endpoint_info(sl)
    assert info["resolved"] and info["resolved_address"] == "127.0.0.1:%d" % one.port, info

    # A slow request in flight on the old address, and steady traffic throughout.
    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=http_request(port, "GET", "/delay?ms=1500")))
    t.start()
    failures, seen = [], set()
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                seen.add(who(port))
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(repr(e))

    loader = threading.Thread(target=load)
    loader.start()
    wait_until(lambda: seen or failures, message="the load running")
    hosts.write("127.0.0.2 backend.sluice.test\n")
    wait_until(lambda: endpoint_info(sl)["resolved_address"] == "127.0.0.2:%d" % one.port,
               timeout=10 * SLOW, message="the new address is resolved")
    wait_until(lambda: who(port) == "two", timeout=5 * SLOW, message="requests reach the new address")
    stop.set()
    loader.join()
    t.join()
    assert not failures, failures[:5]
    assert seen == {"one", "two"}, seen
    # The slow request went to the old address before the change and completed there.
    status, _, body = slow["r"]
    assert status == 200, (status, body)
    # The old address drained: no connection from sluice stays open on it.
    wait_until(lambda: one.stats()["connections_open"] == 1, timeout=5 * SLOW,
               message="pooled connections to the old address are closed")
    wait_until(lambda: "now resolves to 127.0.0.2:%d" % one.port in sl.stderr_text(), message='log line: "now resolves to 127.0.0.2:%d" % one.port in sl.stderr_text(')  # log lines are written by a writer thread

    # A failed lookup keeps the last good address.
    hosts.write("127.0.0.3 some.other.name\n")
    wait_until(lambda: "resolving backend.sluice.test:%d failed" % one.port in sl.stderr_text(),
               timeout=10 * SLOW, message="the failed lookup is logged")
    for _ in range(5):
        assert who(port) == "two"
    assert endpoint_info(sl)["resolved_address"] == "127.0.0.2:%d" % one.port
    sl.stop()


def tmpdir():
    import tempfile
    return tempfile.mkdtemp(prefix="sluice-dns-")


if __name__ == "__main__":
    run_cases()
