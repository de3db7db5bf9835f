"""A short run of tools/soak.sh (the bounded soak): keep-alive load with wrk while the config is
reloaded and an endpoint is drained, removed and re-added; the client, upstream and access-log
counts agree, no request fails, and sluice's FD count and RSS stay flat."""
import os
import subprocess

from harness import SLOW, SLUICE, SOURCE, UPSTREAM, case, run_cases


@case
def soak_smoke_8k_paced_requests_with_reloads_and_flaps():
    env = dict(os.environ, SLUICE_BIN=SLUICE, SLUICE_UPSTREAM_BIN=UPSTREAM,
               SOAK_RELOAD_EVERY_S="0.2", SOAK_SAMPLE_S="0.2",
               # Paced so the run lasts >= 2 s on any machine (2,000 requests per connection,
               # each after a 1 ms wait): about ten reload/drain steps happen under load. Unpaced,
               # a fast machine served everything before the second step (CI saw 0 drains).
               SOAK_PACE_MS="1")
    if os.environ.get("SLUICE_SANITIZE"):
        # A sanitizer's allocator keeps freed memory in quarantine and grows its shadow: RSS is
        # not a leak signal there (LeakSanitizer is), so only the FD and count checks apply.
        env["SOAK_RSS_TOLERANCE_PCT"] = "1000"
    r = subprocess.run([os.path.join(SOURCE, "tools", "soak.sh"), "-n", "8000", "-c", "4"],
                       capture_output=True, text=True, timeout=240 * SLOW, env=env)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "soak: passed" in r.stdout
    # The run did exercise reloads and drains.
    line = next(l for l in r.stdout.splitlines() if "reloads / drains" in l)
    reloads, drains = [int(x) for x in line.split()[3:6:2]]
    assert reloads >= 1 and drains >= 1, line


if __name__ == "__main__":
    run_cases()
