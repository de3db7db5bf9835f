"""A sampled mutation sweep: the schema's richest example with one value at a time replaced by
a wrong type, a boundary value or nothing (and an unknown key added to each object), judged by
schema/sluice.schema.json and by `sluice validate -c`. Where the verdicts differ, the loader's
reason must be one the schema cannot know. (Its own file: the table in test_schema.py and this
sweep each get the ctest time limit, also under the sanitizers.)"""
import copy
import json
import os
from concurrent.futures import ThreadPoolExecutor

import jsonschema

from harness import SLOW, SOURCE, case, run_cases, run_validate

DELETE = object()


def schema():
    with open(os.path.join(SOURCE, "schema", "sluice.schema.json")) as f:
        return json.load(f)


def validator():
    return jsonschema.Draft202012Validator(schema())


def schema_errors(v, cfg):
    return [e.message for e in v.iter_errors(cfg)]


def with_(cfg, path, value):
    c = copy.deepcopy(cfg)
    node = c
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return c


def validate_all(configs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run_validate, configs))


# Loader messages of the kinds a schema cannot know (see the comment above TABLE in
# test_schema.py).
SCHEMA_BLIND = ("unknown cluster", "unknown filter type", "unknown agent", "unknown provider",
                "cannot open", "cannot read", "duplicate", "invalid regex", "is not set")


def mutations(seed):
    """Every leaf of `seed` replaced by a wrong type, a boundary value or nothing, and an unknown
    key added to every object: (pointer, config)."""
    def walk(x, path):
        yield path, x
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        for k, v in items:
            yield from walk(v, path + [k])
    for path, val in list(walk(seed, [])):
        if not path:
            continue
        if isinstance(val, bool):
            cands = [1, "true"]
        elif isinstance(val, int):
            cands = [-1, 0, val + 1, 10 ** 12, "1"]
        elif isinstance(val, str):
            cands = ["", 5, "x y"]
        elif isinstance(val, dict):
            cands = [[], "x"]
        else:
            cands = [{}, [5]]
        if isinstance(path[-1], str):
            cands.append(DELETE)
        for c in cands:
            yield "/".join(map(str, path)), with_(seed, path, c)
        if isinstance(val, dict):
            yield "/".join(map(str, path)) + "/zz", with_(seed, path + ["zz_unknown"], 1)


@case
def mutated_examples_get_the_same_verdict():
    """A deterministic sample of mutations of the schema's richest example: where the verdicts
    differ, the loader's reason must be one the schema cannot know."""
    v = validator()
    seed = copy.deepcopy(max(schema()["examples"], key=lambda e: len(json.dumps(e))))
    for l in seed["listeners"]:  # the taxonomy compile makes each validate slow; the table covers it
        l["filters"] = [f for f in l["filters"] if f["type"] != "ai_agent_tagger"]
    muts = list(mutations(seed))
    assert len(muts) > 300, len(muts)
    # Fewer under the sanitizers (SLOW > 1), where each validate is several times slower.
    sample = muts[::max(1, len(muts) // (60 // SLOW))]
    disagree = []
    verdicts = validate_all([cfg for _, cfg in sample])
    for (pointer, cfg), (code, out) in zip(sample, verdicts):
        schema_ok = not schema_errors(v, cfg)
        if (code == 0) != schema_ok and not (schema_ok and any(k in out for k in SCHEMA_BLIND)):
            disagree.append("%s: sluice validate %s, schema %s" % (
                pointer, "ok" if code == 0 else out.strip()[:200], "ok" if schema_ok else "rejects"))
    assert not disagree, "\n".join(disagree)



if __name__ == "__main__":
    run_cases()
