"""The status page at GET / on the admin port, in a real headless Chromium: it asks for the admin
key, shows listeners, clusters with endpoint health, AI agents and the reload history, and
follows an endpoint that fails its health check. Also: the same auth rule as every admin
endpoint, and nothing loaded from outside the admin port.

Needs Debian's chromium, chromium-driver and python3-selenium (tools/install-deps.sh)."""
import json
import os
import re
import shutil
import signal
import tempfile
import time

from harness import SLOW, Sluice, Upstream, case, http_request, run_cases, simple_config, wait_until

KEY = "page-key"
BUILD_DIR = os.environ.get("SLUICE_BUILD_DIR", "build")
ARTIFACTS = os.path.join(BUILD_DIR, "test-artifacts")
GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"


def page_config(up, api_key=KEY):
    hc = {"path": "/healthz", "interval_ms": 100, "timeout_ms": 500, "healthy_threshold": 1,
          "unhealthy_threshold": 1, "expected_statuses": [200]}
    cfg = simple_config(up.address, clusters=[{"name": "up", "endpoints": [{"address": up.address}],
                                               "health_check": hc}],
                        filters_before=[{"type": "ai_agent_tagger", "config": {"taxonomy": "builtin"}}])
    cfg["admin"] = {"address": "127.0.0.1:0"}
    if api_key:
        cfg["admin"]["api_key"] = api_key
    return cfg


def header(headers, name):
    return next((v for k, v in headers if k.lower() == name), None)


@case
def page_needs_the_key_and_references_nothing_external():
    up = Upstream()
    sl = Sluice(page_config(up))
    auth = {"Authorization": "Bearer " + KEY}
    # Without the key: 401 for the page (its body is the key form: static, no data) and its JSON.
    status, hs, body = http_request(sl.admin_port, "GET", "/")
    assert status == 401, status
    assert header(hs, "www-authenticate") == 'Bearer realm="sluice-admin"', hs
    assert b"127.0.0.1:%d" % up.port not in body  # nothing from the live state
    for path in ("/status", "/clusters", "/stats"):
        assert http_request(sl.admin_port, "GET", path)[0] == 401, path
        assert http_request(sl.admin_port, "GET", path, {"Authorization": "Bearer wrong"})[0] == 401
    # With the key: the page, self-contained.
    status, hs, body = http_request(sl.admin_port, "GET", "/", auth)
    assert status == 200 and header(hs, "content-type").startswith("text/html"), (status, hs)
    html = body.decode()
    assert "<!DOCTYPE html>" in html and "/status" in html and "/clusters" in html
    # No external URL anywhere: no scheme, no protocol-relative link, no src/href/@import/url().
    assert not re.search(r"(https?|wss?|ftp):", html, re.I), re.search(r".{40}(https?|wss?|ftp):.{40}", html, re.I)
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*//""", html, re.I)
    assert not re.search(r"""\bsrc\s*=""", html, re.I)  # every script and style is inline
    assert not re.search(r"@import|url\(", html, re.I)
    assert "<link" not in html.lower()
    csp = header(hs, "content-security-policy")
    assert csp and "default-src 'none'" in csp and "connect-src 'self'" in csp, csp
    # /status: listeners with their bound port, uptime, the start-up entry of the history.
    status, _, body = http_request(sl.admin_port, "GET", "/status", auth)
    doc = json.loads(body)
    assert status == 200
    assert doc["listeners"] == [{"name": "web", "address": "127.0.0.1:%d" % sl.port()}], doc
    assert doc["generation"] == 1 and doc["ready"] is True and doc["uptime_ms"] >= 0, doc
    first = doc["reloads"][-1]
    assert first["generation"] == 1 and first["result"] == "success" and first["initial"], first
    assert first["changes"]["clusters"]["added"] == ["up"], first
    assert http_request(sl.admin_port, "POST", "/", auth)[0] == 405
    sl.stop()
    # Without an api_key (loopback admin) the page and its JSON answer without a header.
    sl = Sluice(page_config(up, api_key=None))
    assert http_request(sl.admin_port, "GET", "/")[0] == 200
    assert http_request(sl.admin_port, "GET", "/status")[0] == 200
    sl.stop()


def start_chromium(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1400,1100", "--user-data-dir=" + profile):
        opts.add_argument(a)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30 * SLOW)
    return driver


def screenshot(driver, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    assert driver.save_screenshot(path), path
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, (path, len(data))
    print("screenshot: %s (%d bytes)" % (path, len(data)), flush=True)
    return path


def endpoint_state(driver, cluster, address):
    """(data-healthy, badge text) of that endpoint's row, or None while it is not shown."""
    return driver.execute_script(
        "const r = document.querySelector(`tr.endpoint[data-cluster='${arguments[0]}']"
        "[data-endpoint='${arguments[1]}']`);"
        "return r ? [r.dataset.healthy, r.querySelector('.health').textContent] : null;",
        cluster, address)


@case
def chromium_shows_an_endpoint_turning_unhealthy():
    for tool in ("chromium", "chromedriver"):
        assert shutil.which(tool), "%s is missing: run tools/install-deps.sh" % tool
    up = Upstream("a")
    sl = Sluice(page_config(up))
    # Some traffic: a browser and an AI crawler.
    for i in range(6):
        ua = GPTBOT if i % 2 else "curl/8.0"
        assert http_request(sl.port(), "GET", "/x", {"User-Agent": ua})[0] == 200
    profile = tempfile.mkdtemp(prefix="sluice-chromium-")
    driver = start_chromium(profile)
    try:
        from selenium.webdriver.common.by import By

        driver.get("http://127.0.0.1:%d/" % sl.admin_port)
        # The page came with a 401: it asks for the key and shows no data yet.
        form = driver.find_element(By.ID, "login")
        wait_until(lambda: form.is_displayed(), 10, message="the key form")
        assert not driver.find_element(By.ID, "main").is_displayed()
        key_input = driver.find_element(By.ID, "key")
        key_input.send_keys("wrong-key")
        form.submit()
        wait_until(lambda: "refused" in driver.find_element(By.ID, "loginerr").text, 10,
                   message="the refused-key message")
        driver.find_element(By.ID, "key").send_keys(KEY)
        driver.find_element(By.ID, "login").submit()
        addr = up.address
        wait_until(lambda: endpoint_state(driver, "up", addr) == ["true", "healthy"], 10,
                   message="endpoint shown healthy")
        # Two polls: rates and window percentiles have a previous sample.
        wait_until(lambda: int(driver.execute_script("return document.body.dataset.polls || 0")) >= 2,
                   10, message="a second poll")
        listeners = driver.find_element(By.ID, "listeners").text
        assert "web" in listeners and "127.0.0.1:%d" % sl.port() in listeners, listeners
        agents = driver.find_element(By.ID, "agents").text
        assert "GPTBot" in agents and "OpenAI" in agents, agents
        # Its purpose, joined from sluice_ai_agent_info, in its row and in the by-purpose table.
        row = driver.find_element(By.CSS_SELECTOR, "#agents tr.agent").text
        assert "training" in row, row
        by_purpose = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#agents tr.by-purpose")]
        assert any(t.startswith("training") for t in by_purpose), by_purpose
        assert "ready" in driver.find_element(By.ID, "state").text
        assert driver.execute_script("return sessionStorage.getItem('sluice-admin-key')") == KEY
        # A reload shows up in the history with what it changed.
        cfg = page_config(up)
        cfg["clusters"][0]["connect_timeout_ms"] = 700
        cfg["listeners"][0]["address"] = "127.0.0.1:%d" % sl.port()
        cfg.setdefault("workers", 1)
        cfg.setdefault("shutdown", {"pre_drain_ms": 0, "drain_ms": 2000, "teardown_ms": 1000})
        with open(sl.config_path, "w") as f:
            json.dump(cfg, f)
        sl.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "~cluster up" in driver.find_element(By.ID, "reloads").text, 10,
                   message="the reload in the history")
        assert driver.find_element(By.ID, "generation").text == "2"
        path = screenshot(driver, "status_page.png")
        # The upstream fails its health check: the page follows within a few polls.
        status, _, _ = http_request(up.port, "GET", "/control/health?status=503")
        assert status == 200
        wait_until(lambda: endpoint_state(driver, "up", addr) == ["false", "unhealthy"], 15,
                   message="endpoint shown unhealthy")
        badge = driver.find_element(By.CSS_SELECTOR, "div.cluster[data-cluster='up'] h3 .badge").text
        assert badge == "0/1 available", badge
        screenshot(driver, "status_page_unhealthy.png")
        # And back.
        http_request(up.port, "GET", "/control/health?status=200")
        wait_until(lambda: endpoint_state(driver, "up", addr) == ["true", "healthy"], 15,
                   message="endpoint shown healthy again")
        # Forgetting the key returns to the form.
        driver.find_element(By.ID, "forget").click()
        wait_until(lambda: driver.find_element(By.ID, "login").is_displayed(), 10, message="the form again")
        assert driver.execute_script("return sessionStorage.getItem('sluice-admin-key')") is None
        # A key handed over in the URL fragment is taken, kept, and removed from the address bar.
        driver.get("http://127.0.0.1:%d/#key=%s" % (sl.admin_port, KEY))
        wait_until(lambda: endpoint_state(driver, "up", addr) == ["true", "healthy"], 10,
                   message="the page shown with the key from the fragment")
        assert "#" not in driver.current_url and KEY not in driver.current_url, driver.current_url
        assert driver.execute_script("return sessionStorage.getItem('sluice-admin-key')") == KEY
        assert os.path.getsize(path) > 10000
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    sl.stop()


if __name__ == "__main__":
    run_cases()
