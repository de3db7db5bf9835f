#!/usr/bin/env python3
"""Lists the names in the data files that the ai_agent_tagger taxonomy does not know yet: run it
after refreshing data/ai-robots.json (or data/crawler-user-agents.json), classify what it prints
(in tools/ai_taxonomy/generate.py, then regenerate taxonomy.json and review the diff).

Known means: an agent of taxonomy.json lists the key in source.ai_robots (or the pattern in
source.crawler_user_agents), or the taxonomy documents the key in robots_txt_only / not_ai.
Checked:
  - every key of ai-robots.json;
  - every crawler-user-agents.json entry tagged "ai-crawler" (its `pattern`).
Also reported: taxonomy source entries that the data files no longer contain (stale).

    tools/ai_taxonomy/new-names.py [--data DIR] [--taxonomy FILE]

Exit status: 0 when every name is known, 1 when something is new or stale, 2 on bad input.
"""
import argparse
import json
import os
import sys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print("new-names.py: %s: %s" % (path, e), file=sys.stderr)
        sys.exit(2)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(root, "data"),
                    help="folder with ai-robots.json and crawler-user-agents.json")
    ap.add_argument("--taxonomy",
                    default=os.path.join(root, "filters", "ai_agent_tagger", "taxonomy.json"))
    args = ap.parse_args()

    ai = load(os.path.join(args.data, "ai-robots.json"))
    cua_path = os.path.join(args.data, "crawler-user-agents.json")
    cua = load(cua_path) if os.path.exists(cua_path) else []
    tax = load(args.taxonomy)
    if not isinstance(ai, dict) or not isinstance(tax, dict) or not isinstance(cua, list):
        print("new-names.py: unexpected file shapes", file=sys.stderr)
        return 2

    ai_known, cua_known = set(), set()
    for a in tax.get("agents", []):
        src = a.get("source", {})
        ai_known.update(src.get("ai_robots", []))
        cua_known.update(src.get("crawler_user_agents", []))
    documented = {e["token"] for key in ("robots_txt_only", "not_ai") for e in tax.get(key, [])}

    new_ai = [k for k in ai if k not in ai_known and k not in documented]
    ai_crawlers = [e for e in cua if "ai-crawler" in e.get("tags", [])]
    cua_patterns = {e.get("pattern") for e in cua}
    new_cua = [e for e in ai_crawlers
               if e.get("pattern") not in cua_known and e.get("pattern") not in documented
               and e.get("pattern") not in ai_known]
    stale_ai = sorted(k for k in ai_known if k not in ai)
    stale_cua = sorted(p for p in cua_known if p not in cua_patterns)

    for k in new_ai:
        v = ai[k] if isinstance(ai[k], dict) else {}
        print("ai-robots.json\t%s\toperator: %s\tfunction: %s" % (
            k, v.get("operator", "?"), v.get("function", "?")))
    for e in new_cua:
        inst = (e.get("instances") or ["?"])[0]
        print("crawler-user-agents.json\t%s\texample: %s" % (e.get("pattern"), inst))
    for k in stale_ai:
        print("stale (taxonomy source.ai_robots, not in ai-robots.json)\t%s" % k)
    for p in stale_cua:
        print("stale (taxonomy source.crawler_user_agents, not in crawler-user-agents.json)\t%s" % p)
    total = len(new_ai) + len(new_cua) + len(stale_ai) + len(stale_cua)
    print("%d new, %d stale (ai-robots.json: %d keys; taxonomy: %d agents)" % (
        len(new_ai) + len(new_cua), len(stale_ai) + len(stale_cua), len(ai),
        len(tax.get("agents", []))), file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
