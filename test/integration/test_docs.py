"""The reference in docs/ cannot silently drift from the code: every relative link in README.md,
docs/ and the filter READMEs resolves inside the repository (and its #anchor to a heading),
no link leaves the repository, every metric family the binary exposes (and every one the
sources define) is in docs/metrics.md with its type, and every admin path the server routes is
in docs/admin-api.md — and answers (is not 404) on a running sluice."""
import glob
import json
import os
import re

from harness import SOURCE, Sluice, case, http_request, run_cases, wait_until

ROOT = os.path.realpath(SOURCE)


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def doc_files():
    files = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    files += sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "filters", "*", "README.md")))
    files += sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "extensions", "*", "README.md")))
    return files


def strip_code(text):
    """Markdown without fenced blocks and inline code (links there are not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text):
    body = strip_code(text)
    out = re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", body)
    out += re.findall(r"<((?:https?|ftp|mailto):[^>]+)>", body)
    return out


def slug(heading):
    """GitHub's anchor for a heading."""
    h = re.sub(r"`", "", heading.strip().lower())
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(text):
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", strip_code_blocks_only(text), flags=re.M)}


def strip_code_blocks_only(text):
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)


@case
def every_link_resolves_inside_the_repository():
    files = doc_files()
    assert "docs/configuration.md" in files and "docs/README.md" in files, files
    bad = []
    checked = 0
    for rel in files:
        for target in links(read(rel)):
            checked += 1
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
                bad.append("%s: %s points outside the repository" % (rel, target))
                continue
            path, _, frag = target.partition("#")
            dest = os.path.realpath(os.path.join(ROOT, os.path.dirname(rel), path)) if path else os.path.join(ROOT, rel)
            if not (dest == ROOT or dest.startswith(ROOT + os.sep)):
                bad.append("%s: %s leaves the repository" % (rel, target))
            elif not os.path.exists(dest):
                bad.append("%s: %s does not exist" % (rel, target))
            elif frag and dest.endswith(".md") and frag not in anchors(open(dest).read()):
                bad.append("%s: %s: no heading with anchor #%s" % (rel, target, frag))
    assert checked > 50, checked
    assert not bad, "\n".join(bad)


@case
def readme_points_to_the_docs_not_to_a_spec():
    text = read("README.md")
    assert "SPEC.md" not in text, "README.md still sends readers to SPEC.md"
    for page in ("docs/configuration.md", "docs/admin-api.md", "docs/metrics.md", "docs/lifecycle.md"):
        assert "(%s)" % page in text, page
    for name in ("router", "ratelimit", "jwt_authn", "cors", "ai_agent_tagger", "access_log"):
        assert os.path.exists(os.path.join(ROOT, "docs", "filters", name + ".md")), name
        assert "../../docs/filters/%s.md" % name in read("filters/%s/README.md" % name), name
    for d in sorted(glob.glob(os.path.join(ROOT, "extensions", "*", "README.md"))):
        name = os.path.basename(os.path.dirname(d))
        assert os.path.exists(os.path.join(ROOT, "docs", "filters", name + ".md")), name
        assert "../../docs/filters/%s.md" % name in open(d).read(), name


def metric_rows():
    """{family: row text} from the tables of docs/metrics.md."""
    rows = {}
    for line in read("docs/metrics.md").splitlines():
        m = re.match(r"^\|\s*`(sluice_[a-z0-9_]+)`\s*\|(.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def source_families():
    """Metric family names defined in the sources (core, filters, extensions)."""
    names = set()
    for pattern in ("core/**/*.cc", "core/**/*.h", "filters/**/*.cc", "extensions/**/*.cc", "extensions/**/*.c"):
        for p in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            with open(p) as f:
                for n in re.findall(r'"(sluice_[a-z0-9_]+)"', f.read()):
                    if not n.endswith("_") and not n.startswith(("sluice_host_", "sluice_on_", "sluice_module_", "sluice_builtin_")):
                        names.add(n)
    return names


def quickstart():
    with open(os.path.join(ROOT, "examples", "quickstart.json")) as f:
        cfg = json.load(f)
    cfg["admin"] = {"address": "127.0.0.1:0"}
    for l in cfg["listeners"]:
        l["address"] = "127.0.0.1:0"
    cfg["shutdown"] = {"pre_drain_ms": 0, "drain_ms": 1000, "teardown_ms": 1000}
    return cfg


@case
def every_exposed_metric_family_is_documented_with_its_type():
    s = Sluice(quickstart())
    http_request(s.port("web"), "GET", "/")  # a request, so every lazily-filled series has a value
    status, _, body = http_request(s.admin_port, "GET", "/stats/prometheus")
    assert status == 200, status
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body.decode(), flags=re.M))
    assert len(types) >= 10 and "sluice_downstream_requests_total" in types, types
    rows = metric_rows()
    missing = [n for n in types if n not in rows]
    assert not missing, "families exposed but not in docs/metrics.md: %s" % missing
    wrong = ["%s is a %s" % (n, t) for n, t in types.items() if not re.search(r"\|\s*%s\s*\|" % t, "|" + rows[n])]
    assert not wrong, "docs/metrics.md gives the wrong type: %s" % wrong


@case
def every_metric_family_in_the_sources_is_documented():
    names = source_families()
    assert "sluice_ai_agent_requests_total" in names and "sluice_ext_authz_requests_total" in names, names
    rows = metric_rows()
    missing = sorted(n for n in names if n not in rows)
    assert not missing, "defined in the sources but not in docs/metrics.md: %s" % missing
    stale = sorted(n for n in rows if n not in names)
    assert not stale, "documented in docs/metrics.md but defined nowhere: %s" % stale


def routed_paths():
    """(exact paths, path prefixes) the admin server routes, read from its source."""
    src = read("core/admin/admin_server.cc")
    exact = set(re.findall(r'path\s*==\s*"(/[^"]*)"', src))
    prefixes = set(re.findall(r'std::string_view\s+k\w+\s*=\s*"(/[^"]*/)"', src))
    return exact, prefixes


def documented_endpoints():
    """[(method, path)] from the `## METHOD /path[, METHOD /path]` headings of admin-api.md."""
    out = []
    for h in re.findall(r"^## (.*)$", strip_code_blocks_only(read("docs/admin-api.md")), flags=re.M):
        out += re.findall(r"\b(GET|POST|PUT|HEAD|DELETE) (/[^\s,]*)", h)
    return out


@case
def every_routed_admin_path_is_documented():
    exact, prefixes = routed_paths()
    assert {"/ready", "/healthz", "/stats", "/reload", "/clusters"} <= exact, exact
    documented = [p for _, p in documented_endpoints()]
    missing = sorted(p for p in exact if p not in documented)
    assert not missing, "routed but without a `## METHOD PATH` section in docs/admin-api.md: %s" % missing
    for prefix in prefixes:
        assert any(p.startswith(prefix + "{") for p in documented), "no section for %s{...}" % prefix


@case
def every_documented_admin_endpoint_answers():
    cfg = quickstart()
    s = Sluice(cfg)
    endpoints = documented_endpoints()
    assert len(endpoints) >= 12, endpoints
    cluster = cfg["clusters"][0]
    # POST /drain ends the process: last.
    endpoints.sort(key=lambda e: e[1] == "/drain")
    for method, path in endpoints:
        path = path.replace("{name}", cluster["name"]).replace("{address}", cluster["endpoints"][0]["address"])
        body = b"{}" if method == "PUT" else None
        status, _, text = http_request(s.admin_port, method, path, body=body)
        if path == "/debug/allocations" and status == 404:
            # Off unless started with SLUICE_COUNT_ALLOCATIONS=1: the 404 must say so.
            assert b"SLUICE_COUNT_ALLOCATIONS=1" in text, text
            continue
        assert status not in (404, 405), (method, path, status, text)
    wait_until(lambda: s.proc.poll() is not None, timeout=10, message="exit after POST /drain")
    assert s.proc.returncode == 0, s.proc.returncode


if __name__ == "__main__":
    run_cases()
