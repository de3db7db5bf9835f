"""ai_agent_tagger through the real binary: tag headers reaching the upstream (spoofed copies
removed), blocking with a local reply, the access-log metadata fields, the per-agent counter on
the admin Prometheus page, taxonomy files and config errors."""
import json
import os
import re
import tempfile

from harness import (Sluice, Upstream, case, http_request, promtool_check, run_cases, run_validate, simple_config,
                     wait_until)

GPTBOT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
CHATGPT_USER = ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
                "+https://openai.com/bot")
BYTESPIDER = ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Mobile Safari/537.36; Bytespider")
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
HEADERS = {"agent": "x-ai-agent", "provider": "x-ai-provider", "purpose": "x-ai-purpose"}


def tagger_config(up, tagger, log=True, admin=True):
    after = [{"type": "access_log", "config": {"path": "access.log", "flush_ms": 50}}] if log else []
    cfg = simple_config(up.address, filters_before=[{"type": "ai_agent_tagger", "config": tagger}],
                        filters_after=after)
    if admin:
        cfg["admin"] = {"address": "127.0.0.1:0"}
    return cfg


def echoed(body):
    """The request headers the upstream saw, as a list of (lower-case name, value)."""
    return [(k.lower(), v) for k, v in json.loads(body)["headers"]]


def values(hs, name):
    return [v for k, v in hs if k == name]


def log_lines(sl):
    path = os.path.join(sl.dir, "access.log")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [json.loads(l) for l in f.read().split(b"\n") if l]


@case
def tags_reach_the_upstream_and_spoofed_copies_do_not():
    up = Upstream()
    sl = Sluice(tagger_config(up, {"request_headers": HEADERS}, log=False, admin=False))
    status, _, body = http_request(sl.port(), "GET", "/echo", {"User-Agent": GPTBOT, "X-AI-Agent": "ClaudeBot",
                                                               "x-ai-purpose": "user"})
    assert status == 200, body
    hs = echoed(body)
    assert values(hs, "x-ai-agent") == ["GPTBot"], hs
    assert values(hs, "x-ai-provider") == ["OpenAI"], hs
    assert values(hs, "x-ai-purpose") == ["training"], hs
    assert values(hs, "user-agent") == [GPTBOT], hs

    # A browser that claims to be an AI agent through the tag headers: they are dropped.
    status, _, body = http_request(sl.port(), "GET", "/echo", {"User-Agent": CHROME, "x-ai-agent": "GPTBot",
                                                               "X-AI-Provider": "OpenAI"})
    assert status == 200
    hs = echoed(body)
    assert values(hs, "x-ai-agent") == [] and values(hs, "x-ai-provider") == [], hs

    # No User-Agent at all: still no spoofed tag.
    status, _, body = http_request(sl.port(), "GET", "/echo", {"x-ai-agent": "GPTBot"})
    assert status == 200 and values(echoed(body), "x-ai-agent") == [], body

    # The most specific OpenAI agent wins over the openai.com fallback.
    status, _, body = http_request(sl.port(), "GET", "/echo", {"User-Agent": CHATGPT_USER})
    hs = echoed(body)
    assert values(hs, "x-ai-agent") == ["ChatGPT-User"] and values(hs, "x-ai-purpose") == ["user"], hs
    assert sl.stop() == 0


@case
def blocked_agents_get_the_configured_status_and_everything_is_logged():
    up = Upstream()
    sl = Sluice(tagger_config(up, {"request_headers": {"agent": "x-ai-agent"},
                                   "block": {"agents": ["Bytespider"], "status": 451}}))
    before = up.stats()["requests"]
    status, _, body = http_request(sl.port(), "GET", "/blocked", {"User-Agent": BYTESPIDER})
    assert status == 451 and body == b"blocked: AI agent\n", (status, body)
    assert up.stats()["requests"] == before + 1  # only the stats request itself
    status, _, body = http_request(sl.port(), "GET", "/allowed", {"User-Agent": GPTBOT})
    assert status == 200 and values(echoed(body), "x-ai-agent") == ["GPTBot"], body
    status, _, _ = http_request(sl.port(), "GET", "/browser", {"User-Agent": CHROME})
    assert status == 200
    wait_until(lambda: len(log_lines(sl)) == 3, timeout=10, message="three access-log lines")
    by_path = {l["path"]: l for l in log_lines(sl)}
    b = by_path["/blocked"]
    assert b["status"] == 451 and "LR" in b["flags"], b
    assert b["ai.agent"] == "Bytespider" and b["ai.provider"] == "ByteDance" and b["ai.purpose"] == "training", b
    a = by_path["/allowed"]
    assert a["ai.agent"] == "GPTBot" and a["ai.provider"] == "OpenAI" and a["ai.purpose"] == "training", a
    assert not any(k.startswith("ai.") for k in by_path["/browser"]), by_path["/browser"]
    assert sl.stop() == 0


def scrape(sl):
    return http_request(sl.admin_port, "GET", "/stats/prometheus")[2].decode()


def counter(text, provider, agent):
    for line in text.splitlines():
        if line.startswith("sluice_ai_agent_requests_total{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[:line.index("}") + 1]))
            if labels.get("provider") == provider and labels.get("agent") == agent:
                return float(line.rsplit(" ", 1)[1])
    return None


@case
def the_counter_is_on_the_prometheus_page():
    up = Upstream()
    sl = Sluice(tagger_config(up, {}, log=False))
    text = scrape(sl)
    # Every agent has its instance from config load on, at zero.
    assert counter(text, "OpenAI", "GPTBot") == 0, text
    assert counter(text, "Anthropic", "ClaudeBot") == 0, text
    assert "# TYPE sluice_ai_agent_requests_total counter" in text, text
    # The purpose of each agent rides on an info series, not on the per-request counter.
    assert "# TYPE sluice_ai_agent_info gauge" in text, text
    assert 'sluice_ai_agent_info{provider="OpenAI",agent="GPTBot",purpose="training"} 1' in text, text
    assert 'sluice_ai_agent_info{provider="OpenAI",agent="ChatGPT-User",purpose="user"} 1' in text, text
    for _ in range(3):
        assert http_request(sl.port(), "GET", "/", {"User-Agent": GPTBOT})[0] == 200
    assert http_request(sl.port(), "GET", "/", {"User-Agent": "Claude-User (claude-code/2.1.86; +https://support.anthropic.com/)"})[0] == 200
    assert http_request(sl.port(), "GET", "/", {"User-Agent": CHROME})[0] == 200
    wait_until(lambda: counter(scrape(sl), "OpenAI", "GPTBot") == 3, timeout=10, message="GPTBot counted 3 times")
    text = scrape(sl)
    assert counter(text, "Anthropic", "Claude-User") == 1, text
    assert counter(text, "Anthropic", "Claude-Code") == 0, text
    total = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                if l.startswith("sluice_ai_agent_requests_total{"))
    assert total == 4, total
    promtool_check(text)
    assert sl.stop() == 0


@case
def a_taxonomy_file_replaces_the_builtin_one():
    d = tempfile.mkdtemp(prefix="sluice-ai-tax-")
    path = os.path.join(d, "taxonomy.json")
    with open(path, "w") as f:
        json.dump({"version": 1, "agents": [
            {"agent": "AcmeBot", "provider": "Acme", "purpose": "search", "tokens": ["AcmeBot"],
             "source": {"note": "integration test"}}]}, f)
    up = Upstream()
    sl = Sluice(tagger_config(up, {"taxonomy": {"file": path}, "request_headers": {"agent": "x-ai-agent"}},
                              log=False, admin=False))
    _, _, body = http_request(sl.port(), "GET", "/echo", {"User-Agent": "AcmeBot/2.0 (+https://acme.test)"})
    assert values(echoed(body), "x-ai-agent") == ["AcmeBot"], body
    _, _, body = http_request(sl.port(), "GET", "/echo", {"User-Agent": GPTBOT})
    assert values(echoed(body), "x-ai-agent") == [], body
    assert sl.stop() == 0


@case
def config_errors_fail_validate_with_pointers():
    up_address = "127.0.0.1:9"

    def check(tagger, pointer, words):
        cfg = simple_config(up_address, filters_before=[{"type": "ai_agent_tagger", "config": tagger}])
        rc, out = run_validate(cfg)
        assert rc == 1, (rc, out)
        assert "/listeners/0/filters/0/config" + pointer in out, out
        assert words in out, out

    check({"block": {"agents": ["NoSuchBot"]}}, "/block/agents/0", "unknown agent")
    check({"block": {"agents": ["GPTBot"], "status": 302}}, "/block/status", "400..599")
    check({"request_headers": {"agent": "bad header"}}, "/request_headers/agent", "header name")
    check({"taxonomy": {"file": "missing-taxonomy.json"}}, "/taxonomy/file", "cannot open")
    check({"colour": "blue"}, "/colour", "unknown key")
    d = tempfile.mkdtemp(prefix="sluice-ai-tax-")
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        json.dump({"version": 1, "agents": [
            {"agent": "Bad", "provider": "P", "purpose": "other", "patterns": ["(unclosed"],
             "source": {"note": "n"}}]}, f)
    check({"taxonomy": {"file": bad}}, "/taxonomy/file", '"/agents/0/patterns/0": agent "Bad": invalid pattern')
    rc, out = run_validate(simple_config(up_address, filters_before=[
        {"type": "ai_agent_tagger", "config": {"block": {"agents": ["GPTBot"]}}}]))
    assert rc == 0, out


if __name__ == "__main__":
    run_cases()
