#!/usr/bin/env python3
"""Regenerates filters/ai_agent_tagger/taxonomy.json from the two public lists in
data/ (ai-robots.json from ai-robots-txt/ai.robots.txt and crawler-user-agents.json from
monperrus/crawler-user-agents) plus the hand-written judgements below (providers where the list
says "Unclear", purposes, merged spellings, generic words that need a stricter pattern, and the
tokens that are not AI User-Agents at all).

The checked-in taxonomy.json is the source of truth: review the diff after running this.

    tools/ai_taxonomy/generate.py [--data DIR] > filters/ai_agent_tagger/taxonomy.json
"""
import argparse
import hashlib
import json
import os
import re
import sys

# Word characters for token boundaries (must agree with filters/ai_agent_tagger/taxonomy.cc).
B = r"A-Za-z0-9_.\-"

# robots.txt product tokens that no crawler sends as its User-Agent.
ROBOTS_TXT_ONLY = {
    "Google-Extended": "Google's robots.txt control for Gemini training and grounding; Google "
                       "crawls with Googlebot's User-Agent and reads this token only in robots.txt.",
    "Applebot-Extended": "Apple's robots.txt control for training on what Applebot fetched; "
                         "Applebot does the crawling under its own User-Agent.",
    "Webzio-Extended": "Webz.io's robots.txt control for AI use of what its crawlers fetch.",
    "webzio-extended": "Lower-case spelling of Webzio-Extended (robots.txt only).",
    "YandexAdditional": "Yandex's robots.txt token for YandexGPT use; the crawler that fetches "
                        "sends YandexAdditionalBot (an agent below).",
}

# Tokens that are not AI agents. ai-robots.json lists the first two; the rest are the common
# non-AI crawlers and link-preview fetchers a reader might expect to be tagged.
NOT_AI = {
    "Applebot": "Apple's search crawler (Siri/Spotlight search). Its use for Apple's AI is "
                "controlled by the robots.txt-only token Applebot-Extended, so plain Applebot "
                "is a search engine crawler here (listed in ai-robots.json).",
    "facebookexternalhit": "Meta's link-preview fetcher for shared links (listed in "
                           "ai-robots.json as possibly used for AI; link previews are not AI "
                           "agents here). Meta's AI crawlers are meta-externalagent and "
                           "meta-externalfetcher.",
    "Googlebot": "Google Search crawler.",
    "bingbot": "Microsoft Bing search crawler.",
    "DuckDuckBot": "DuckDuckGo search crawler (its AI fetcher is DuckAssistBot).",
    "YandexBot": "Yandex search crawler.",
    "Baiduspider": "Baidu search crawler.",
    "Twitterbot": "X/Twitter link-preview fetcher.",
    "Slackbot": "Slack link-preview fetcher.",
    "SemrushBot": "Semrush SEO crawler (its AI tools use SemrushBot-OCOB and SemrushBot-SWA).",
}

# Spellings that ai-robots.json lists twice: merged into the first agent.
ALIASES = {
    "Meta-ExternalAgent": "meta-externalagent",
    "Meta-ExternalFetcher": "meta-externalfetcher",
    "MistralAI-User/1.0": "MistralAI-User",
    "iaskspider/2.0": "iaskspider",
    "Terra Cotta": "TerraCotta",
    "Brightbot 1.0": "Brightbot",
    "panscient.com": "Panscient",
    "quillbot.com": "QuillBot",
    "omgilibot": "omgili",
    "Echobot Bot": "EchoboxBot",
}


def product(name):
    """A generic word: only as a product token with a version (`Name/1.2`), case-sensitive."""
    return r"(?:^|[\s;(])" + re.escape(name) + r"/[0-9]"


# Generic words (or tokens that appear glued to other text) matched by a pattern instead of a
# plain token. Hyperscan syntax; case-sensitive unless (?i).
PATTERNS = {
    "Code": [product("Code")],
    "Cursor": [product("Cursor")],
    "Devin": [product("Devin")],
    "Operator": [product("Operator")],
    "Trae": [product("Trae")],
    "YaK": [product("YaK")],
    "LCC": [r"^LCC[ /]"],
    "Spider": [r"(?:^|[^" + B + r"])Spider[^" + B + r"].*spider\.com"],
    "Crawl4AI": [r"(?i)(?:^|[^" + B + r"])crawl4ai(?:[^A-Za-z0-9_.]|$)"],
    # The generic OpenAI fallback: the bare word or an openai.com address in the UA.
    "OpenAI": [r"(?i)(?:^|[^" + B + r"])openai\.com(?:[^" + B + r"]|$)"],
}
# Generic words whose plain token is not used at all (only PATTERNS).
PATTERN_ONLY = {"Code", "Cursor", "Devin", "Operator", "Trae", "YaK", "LCC", "Spider", "Crawl4AI"}

PRECEDENCE = {
    "OpenAI": 10,  # generic: any more specific OpenAI agent wins
    "Claude-Code": 90,  # "Claude-User (claude-code/x)": the fetcher is Claude-User
}

# Why an entry deviates from "one token, spelled like its ai-robots.json key".
NOTES = {
    "ExaBot": "The token is also Exalead's (non-AI) search crawler, whose instances in "
              "crawler-user-agents.json point to exabot.com; both are tagged as Exa's ExaBot.",
    "OpenAI": "Generic fallback (lowest precedence): the bare word or an openai.com address; any "
              "specific OpenAI agent that also matches wins.",
    "Claude-Code": "Precedence 90: Claude-User sends 'Claude-User (claude-code/x)', which is "
                   "Claude-User.",
    "Code": "Generic word: only the product token Code/<version> (Visual Studio Code, which "
            "crawler-user-agents.json lists as the GitHub Copilot coding agent).",
    "Cursor": "Generic word: only the product token Cursor/<version>.",
    "Devin": "Generic word: only the product token Devin/<version>.",
    "Operator": "Generic word: only the product token Operator/<version>.",
    "Trae": "Generic word: only the product token Trae/<version>.",
    "YaK": "Generic word: only the product token YaK/<version>.",
    "LCC": "Generic word: only at the start of the User-Agent, as crawler-user-agents.json has it.",
    "Spider": "Generic word: only together with spider.com, as crawler-user-agents.json has it.",
    "Crawl4AI": "Also as a prefix (crawl4ai-adapter/1.0).",
}

FUNCTION_PURPOSE = {
    "AI Assistants": "user",
    "AI Agents": "assistant",
    "AI Coding Agents": "assistant",
    "AI Search Crawlers": "search",
    "AI Data Scrapers": "training",
    "AI data scraper": "training",
    "AI Data Providers": "other",
    "Undocumented AI Agents": "other",
}

# Purposes where `function` is free text (or where the category is wrong for the agent).
PURPOSE = {
    "atlassian-bot": "user", "AgentTimes": "other", "AI2Bot": "training", "Ai2Bot-Dolma": "training",
    "aiHitBot": "other", "amazon-kendra": "search", "Amazonbot": "search",
    "Andibot": "search", "Anomura": "search", "anthropic-ai": "training",
    "Awario": "other", "bedrockbot": "other", "Brightbot": "training",
    "BuddyBot": "assistant", "Bytespider": "training", "CCBot": "training",
    "Claude-SearchBot": "search", "ClaudeBot": "training", "Claude-Web": "other",
    "Cloudflare-AutoRAG": "search", "cohere-ai": "user", "Cotoyogi": "training",
    "Datenbank Crawler": "training", "DeepSeekBot": "training", "Diffbot": "other",
    "EchoboxBot": "other", "FacebookBot": "training", "Factset_spyderbot": "training",
    "FriendlyCrawler": "training", "Google-CloudVertexBot": "other",
    "Google-Firebase": "other", "GoogleOther": "other", "GoogleOther-Image": "other",
    "GoogleOther-Video": "other", "GPTBot": "training", "iaskspider": "search",
    "ICC-Crawler": "training", "ImagesiftBot": "other", "img2dataset": "training",
    "ISSCyberRiskCrawler": "training", "KlaviyoAIBot": "user", "LAIONDownloader": "training",
    "Linguee Bot": "other", "meta-externalagent": "training", "meta-webindexer": "search",
    "MistralAI-User": "user", "Mozilla-Tabstack": "other", "netEstate Imprint Crawler": "training",
    "OAI-SearchBot": "search", "omgili": "other", "OpenAI": "other", "Panscient": "other",
    "PerplexityBot": "search", "PetalBot": "search", "PhindBot": "user",
    "Poseidon Research Crawler": "other", "QualifiedBot": "user", "QuillBot": "other",
    "SBIntuitionsBot": "training", "Scrapy": "other", "SemrushBot-OCOB": "other",
    "SemrushBot-SWA": "other", "Sidetrade indexer bot": "other", "Thinkbot": "other",
    "TikTokSpider": "training", "Timpibot": "training", "VelenPublicWebCrawler": "training",
    "wpbot": "other", "YaK": "other", "YandexAdditionalBot": "training", "YouBot": "search",
    "Bravebot": "search", "ChatGPT Agent": "assistant", "ChatGPT-User": "user",
    "Claude-User": "user", "Perplexity-User": "user", "Amzn-User": "user",
    "Gemini-Deep-Research": "assistant", "Google-NotebookLM": "user", "NotebookLM": "user",
    "DuckAssistBot": "user", "newsai": "training", "NagetBot": "training",
    "MyCentralAIScraperBot": "training",
}

# Providers where `operator` is "Unclear", a sentence, or a person's project.
PROVIDER = {
    "AddSearchBot": "AddSearch", "AI2Bot-DeepResearchEval": "Ai2", "AIWebIndex": "Lyrenth",
    "amazon-QBusiness": "Amazon", "Amzn-SearchBot": "Amazon", "Amzn-User": "Amazon",
    "ApifyBot": "Apify", "ApifyWebsiteContentCrawler": "Apify", "Aranet-SearchBot": "Aranet",
    "AzureAI-SearchBot": "Microsoft", "bigsur.ai": "Big Sur AI", "Bravebot": "Brave",
    "Brightbot": "Bright Data", "CCBot": "Common Crawl", "Channel3Bot": "Channel3",
    "ChatGLM-Spider": "Zhipu AI", "Claude-Code": "Anthropic", "CloudVertexBot": "Google",
    "Code": "GitHub", "cohere-training-data-crawler": "Cohere", "CragCrawler": "CragSoftware",
    "Crawl4AI": "Crawl4AI", "Cursor": "Anysphere", "DuckAssistBot": "DuckDuckGo",
    "ExaBot": "Exa", "FirecrawlAgent": "Firecrawl", "GeistHaus-PageFetcher": "GeistHaus",
    "Gemini-Deep-Research": "Google", "Google-Agent": "Google", "Google-Gemini-CLI": "Google",
    "Google-NotebookLM": "Google", "GoogleAgent-URLContext": "Google", "HenkBot": "Valyu",
    "iAskBot": "iAsk", "iaskspider": "iAsk", "imageSpider": "ByteDance",
    "kagi-fetcher": "Kagi", "Kangaroo Bot": "Kangaroo", "Kimi-User": "Moonshot AI",
    "KunatoCrawler": "Kunato", "laion-huggingface-processor": "LAION",
    "LAIONDownloader": "LAION", "LCC": "Leipzig University", "Lightpanda": "Lightpanda",
    "LinerBot": "Liner", "LinkupBot": "Linkup", "Manus-User": "Butterfly Effect",
    "meta-externalfetcher": "Meta", "meta-externalagent": "Meta", "meta-webindexer": "Meta",
    "FacebookBot": "Meta", "MistralAI-User": "Mistral AI", "MyCentralAIScraperBot": "unknown",
    "NagetBot": "Naget", "newsai": "unknown", "NotebookLM": "Google", "NovaAct": "Amazon",
    "opencode": "opencode", "Operator": "OpenAI", "ChatGPT Agent": "OpenAI", "PanguBot": "Huawei",
    "PetalBot": "Huawei", "Poggio-Citations": "Poggio", "Querit-SearchBot": "Querit",
    "QueritBot": "Querit", "Shap-User": "Parallel", "ShapBot": "Parallel", "Spider": "Spider",
    "TavilyBot": "Tavily", "TerraCotta": "Ceramic AI", "TongyiBot": "Alibaba", "Trae": "ByteDance",
    "TwinAgent": "Twin", "UseAI": "unknown", "WRTNBot": "Wrtn", "YiyanBot": "Baidu",
    "ZanistaBot": "Zanista", "Bytespider": "ByteDance", "TikTokSpider": "ByteDance",
    "Google-CloudVertexBot": "Google", "Google-Firebase": "Google", "GoogleOther": "Google",
    "GoogleOther-Image": "Google", "GoogleOther-Video": "Google", "GoogleAgent-Mariner": "Google",
    "LAION": "LAION", "Devin": "Cognition", "Amazonbot": "Amazon", "amazon-kendra": "Amazon",
    "AmazonBuyForMe": "Amazon", "bedrockbot": "Amazon", "Awario": "Awario",
    "Datenbank Crawler": "Datenbank", "DeepSeekBot": "DeepSeek", "EchoboxBot": "Echobox",
    "ICC-Crawler": "NICT", "Cotoyogi": "ROIS", "omgili": "Webz.io", "Scrapy": "Zyte",
    "netEstate Imprint Crawler": "netEstate", "wpbot": "QuantumCloud", "YaK": "Meltwater",
    "YandexAdditionalBot": "Yandex", "Thinkbot": "Thinkbot", "AI2Bot": "Ai2",
    "Ai2Bot-Dolma": "Ai2", "Factset_spyderbot": "FactSet", "FriendlyCrawler": "unknown",
    "SBIntuitionsBot": "SB Intuitions", "Timpibot": "Timpi", "VelenPublicWebCrawler": "Velen",
    "YouBot": "You.com", "Andibot": "Andi", "Anomura": "Direqt", "PhindBot": "Phind",
    "Claude-SearchBot": "Anthropic", "Claude-User": "Anthropic", "Claude-Web": "Anthropic",
    "ClaudeBot": "Anthropic", "anthropic-ai": "Anthropic", "Panscient": "Panscient",
    "Sidetrade indexer bot": "Sidetrade", "Poseidon Research Crawler": "Poseidon Research",
}

# ai-crawler entries of crawler-user-agents.json with no ai-robots.json key:
# pattern -> (agent, provider, purpose, tokens, patterns).
CUA_ONLY = {
    "PerplexityUser": ("PerplexityUser", "Perplexity", "user", ["PerplexityUser"], []),
    "ExteContextCrawl": ("ExteContextCrawl", "Exte", "other", ["ExteContextCrawl"], []),
    "Flyriverbot": ("Flyriverbot", "Flyriver", "other", ["Flyriverbot"], []),
    "semantic-visions": ("semantic-visions", "Semantic Visions", "other", [],
                         [r"(?:^|[^" + B + r"])semantic-visions(?:[^A-Za-z0-9_]|$)"]),
    "TaraGroup Intelligent Bot": ("TaraGroup Intelligent Bot", "TaraGroup", "other",
                                  ["TaraGroup Intelligent Bot"], []),
    "TSM-turingos": ("TSM-turingos", "unknown", "other", [],
                     [r"(?:^|[^" + B + r"])TSM-turingos(?:[^A-Za-z0-9_.]|$)"]),
    "KendraBot": ("KendraBot", "Amazon", "search", ["KendraBot"], []),
    "ImageMind": ("ImageMind", "unknown", "other", ["ImageMind"], []),
    "Novellum": ("Novellum", "Novellum", "other", ["Novellum"], []),
    "linkReader\\/": ("linkReader", "Chitchat", "user", ["linkReader"], []),
    "Spawning-AI": ("Spawning-AI", "Spawning", "other", ["Spawning-AI"], []),
    "The Knowledge AI": ("The Knowledge AI", "unknown", "other", ["The Knowledge AI"], []),
    "AISearchBot": ("AISearchBot", "unknown", "search", ["AISearchBot"], []),
}

# Agents that their operator documents but that neither list in data/ has yet: name ->
# (provider, purpose, tokens, note). new-names.py reports them once a list catches up.
DOCUMENTED_ONLY = {
    "MistralAI-Index": ("Mistral AI", "search", ["MistralAI-Index"],
                        "Mistral AI's search indexer (MistralAI-Index/1.0; "
                        "+https://docs.mistral.ai/robots), documented there beside "
                        "MistralAI-User; in neither list of data/ yet."),
}


def operator_name(op):
    m = re.match(r"\[([^\]]+)\]", op)
    name = m.group(1) if m else op
    return name.strip().rstrip(".")


def corresponds(pattern, key):
    """The derivation the accuracy test uses (documented there): a crawler-user-agents pattern
    names an ai-robots.json key when, anchored at the key's start and ignoring case, it matches
    the whole key (followed by "/" or " ")."""
    p = pattern[1:] if pattern.startswith("^") else pattern
    for suffix in ("/", " "):
        try:
            m = re.match("(?:" + p + ")", key + suffix, re.I)
        except re.error:
            return False
        if m and m.end() >= len(key):
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "data"),
                    help="folder with ai-robots.json and crawler-user-agents.json")
    args = ap.parse_args()
    data = args.data
    ai_path = os.path.join(data, "ai-robots.json")
    cua_path = os.path.join(data, "crawler-user-agents.json")
    ai = json.load(open(ai_path, encoding="utf-8"))
    cua = json.load(open(cua_path, encoding="utf-8"))

    agents = {}
    order = []
    for key, v in ai.items():
        if key in ROBOTS_TXT_ONLY or key in NOT_AI:
            continue
        name = ALIASES.get(key, key)
        if name not in agents:
            purpose = PURPOSE.get(name) or FUNCTION_PURPOSE.get(v["function"])
            if purpose is None:
                sys.exit(f"no purpose for {name!r}: {v['function']!r}")
            provider = PROVIDER.get(name) or operator_name(v["operator"])
            if len(provider) > 24 or provider.startswith("Unclear") or "http" in provider:
                sys.exit(f"no provider for {name!r}: {v['operator']!r}")
            agents[name] = {
                "agent": name, "provider": provider, "purpose": purpose,
                "precedence": PRECEDENCE.get(name, 100), "tokens": [], "patterns": [],
                "source": {"ai_robots": [], "crawler_user_agents": []},
            }
            order.append(name)
        a = agents[name]
        a["source"]["ai_robots"].append(key)
        tok = key.split("/")[0]
        # "Brightbot 1.0" is "Brightbot" followed by its version: the shorter token covers it.
        covered = any(tok.lower() == t.lower() or tok.lower().startswith(t.lower() + " ")
                      for t in a["tokens"])
        if name not in PATTERN_ONLY and not covered:
            a["tokens"].append(tok)
    for name, pats in PATTERNS.items():
        agents[name]["patterns"] = pats
    # crawler-user-agents patterns that name an agent but are not spelled like its key.
    agents["Spider"]["source"]["crawler_user_agents"].append("Spider[\\s\\S]*spider\\.com")
    agents["Code"]["source"]["crawler_user_agents"].append("Code\\/1\\.")  # GitHub Copilot

    for pattern, (name, provider, purpose, tokens, pats) in CUA_ONLY.items():
        agents[name] = {
            "agent": name, "provider": provider, "purpose": purpose, "precedence": 100,
            "tokens": tokens, "patterns": pats,
            "source": {"ai_robots": [], "crawler_user_agents": [pattern]},
        }
        order.append(name)

    for name, (provider, purpose, tokens, note) in DOCUMENTED_ONLY.items():
        agents[name] = {
            "agent": name, "provider": provider, "purpose": purpose, "precedence": 100,
            "tokens": tokens, "patterns": [],
            "source": {"ai_robots": [], "crawler_user_agents": [], "note": note},
        }
        order.append(name)

    # Record which crawler-user-agents entries name each agent.
    for e in cua:
        p = e["pattern"]
        for name in order:
            a = agents[name]
            if p in a["source"]["crawler_user_agents"]:
                continue
            if any(corresponds(p, k) for k in a["source"]["ai_robots"]):
                a["source"]["crawler_user_agents"].append(p)
    for name, note in NOTES.items():
        agents[name]["source"]["note"] = note
    for a in agents.values():
        if not a["source"]["crawler_user_agents"]:
            del a["source"]["crawler_user_agents"]
        if not a["source"]["ai_robots"]:
            del a["source"]["ai_robots"]
        if not a["patterns"]:
            del a["patterns"]
        if not a["tokens"]:
            del a["tokens"]

    def sha(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest()

    out = {
        "version": 1,
        "about": [
            "AI agents for the ai_agent_tagger filter. Generated by tools/ai_taxonomy/generate.py "
            "from the lists below, then reviewed; this file is the source of truth.",
            "tokens: matched ignoring case, on token boundaries (the characters around a token "
            "must not be letters, digits, '_', '-' or '.'). patterns: Hyperscan regexes, "
            "case-sensitive unless (?i). The highest precedence wins; ties go to the match that "
            "ends first in the User-Agent, then to the earlier agent in this file.",
            "source.ai_robots: keys of ai-robots.json; source.crawler_user_agents: `pattern` "
            "values of crawler-user-agents.json entries whose instances are this agent.",
        ],
        "sources": {
            "ai_robots": {"file": "ai-robots.json", "repository": "ai-robots-txt/ai.robots.txt",
                          "path": "robots.json",
                          "commit": "738c80df2169027ce0e07c9976fd3f2f57dd8f7b",
                          "sha256": sha(ai_path), "licence": "MIT"},
            "crawler_user_agents": {"file": "crawler-user-agents.json",
                                    "repository": "monperrus/crawler-user-agents",
                                    "path": "crawler-user-agents.json",
                                    "commit": "7c7f9f254f16fcbc7d0fcb60d0a188897c00b050",
                                    "sha256": sha(cua_path), "licence": "MIT"},
        },
        "agents": [agents[n] for n in order],
        "robots_txt_only": [{"token": k, "reason": r} for k, r in ROBOTS_TXT_ONLY.items()],
        "not_ai": [{"token": k, "reason": r} for k, r in NOT_AI.items()],
    }
    # One agent (or exclusion) per line keeps diffs reviewable.
    w = sys.stdout.write
    one = lambda v: json.dumps(v, ensure_ascii=False)
    w("{\n")
    w(' "version": 1,\n')
    w(' "about": [\n  ' + ",\n  ".join(one(a) for a in out["about"]) + "\n ],\n")
    w(' "sources": {\n  ' + ",\n  ".join(
        one(k) + ": " + one(v) for k, v in out["sources"].items()) + "\n },\n")
    for key in ("agents", "robots_txt_only", "not_ai"):
        w(" " + one(key) + ": [\n  " + ",\n  ".join(one(a) for a in out[key]) + "\n ]")
        w(",\n" if key != "not_ai" else "\n")
    w("}\n")


if __name__ == "__main__":
    main()
