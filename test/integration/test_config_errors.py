"""`sluice validate` wordings (docs/config-errors.md): one wording per type in the core, the
built-in filters and the extension modules; a wrong type always reads `expected <type>, got
<value>`, and `non-empty` only qualifies a value of the right type."""
import os

from harness import SOURCE, Upstream, case, run_cases, run_validate, simple_config

EXT_DIR = os.environ.get("SLUICE_EXTENSIONS_DIR") or os.path.join(
    os.environ.get("SLUICE_BUILD_DIR", os.path.join(SOURCE, "build")), "extensions")


def jwt(provider_extra):
    p = {"name": "idp", "issuer": "https://idp.example.com/", "algorithms": ["RS256"],
         "jwks": {"inline": {"keys": []}}}
    p.update(provider_extra)
    return {"type": "jwt_authn", "config": {"providers": [p], "rules": []}}


def errors(cfg):
    code, out = run_validate(cfg)
    assert code == 1, out
    return [line[len("config error: "):] for line in out.splitlines()
            if line.startswith("config error: ")]


def expect(cfg, line):
    got = errors(cfg)
    assert line in got, (line, got)
    return got


@case
def a_wrong_type_names_the_type_and_the_value():
    up = Upstream()
    f = "/listeners/0/filters/0/config"
    # Built-in filter (filters/common reader), where a non-empty string is required: the SPEC's
    # example, word for word.
    got = expect(simple_config(up.address, filters_before=[jwt({"issuer": 42})]),
                 f + "/providers/0/issuer: expected a string, got 42")
    assert not any("non-empty string, got 42" in g for g in got), got
    expect(simple_config(up.address, filters_before=[jwt({"name": 42})]),
           f + "/providers/0/name: expected a string, got 42")
    expect(simple_config(up.address, filters_before=[jwt({"algorithms": [7]})]),
           f + "/providers/0/algorithms/0: expected a string, got 7")
    # Router (its own reader).
    cfg = simple_config(up.address, routes=[{"match": {"prefix": "/"}, "cluster": 42}])
    expect(cfg, f + "/virtual_hosts/0/routes/0/cluster: expected a string, got 42")
    # Core (config loader).
    cfg = simple_config(up.address)
    cfg["listeners"][0]["name"] = 42
    expect(cfg, "/listeners/0/name: expected a string, got 42")
    cfg = simple_config(up.address)
    cfg["clusters"][0]["name"] = ["a"]
    expect(cfg, '/clusters/0/name: expected a string, got ["a"]')
    # Other types.
    cfg = simple_config(up.address)
    cfg["listeners"][0]["filters"][0]["config"]["virtual_hosts"] = {"a": 1}
    expect(cfg, f + '/virtual_hosts: expected an array, got {"a":1}')
    cfg = simple_config(up.address, filters_before=[{"type": "access_log",
                                                     "config": {"when": {"sample": "half"}}}])
    expect(cfg, f + '/when/sample: expected a number 0..1, got "half"')


@case
def non_empty_qualifies_only_a_value_of_the_right_type():
    up = Upstream()
    f = "/listeners/0/filters/0/config"
    expect(simple_config(up.address, filters_before=[jwt({"issuer": ""})]),
           f + '/providers/0/issuer: expected a non-empty string, got ""')
    expect(simple_config(up.address, filters_before=[jwt({"algorithms": [""]})]),
           f + '/providers/0/algorithms/0: expected a non-empty string, got ""')
    expect(simple_config(up.address, filters_before=[jwt({"algorithms": []})]),
           f + "/providers/0/algorithms: expected a non-empty array, got []")
    cfg = simple_config(up.address)
    cfg["listeners"][0]["name"] = ""
    expect(cfg, '/listeners/0/name: expected a non-empty string, got ""')
    cfg = simple_config(up.address)
    cfg["clusters"][0]["endpoints"] = []
    expect(cfg, "/clusters/0/endpoints: expected a non-empty array, got []")


@case
def access_log_errors_sit_under_its_place_in_the_chain_in_the_shared_wordings():
    # access_log reads its config with the built-in filters' shared reader: an unknown key reads
    # `unknown key "x"` (no list of the keys it expected), at its pointer under the filter's
    # place in the chain (here after the router, filter 1), and every error is reported.
    up = Upstream()
    f = "/listeners/0/filters/1/config"
    log = {"type": "access_log", "config": {"when": {"statusmin": 400, "sample": 2},
                                            "flush_ms": 0, "format": {"tmpl": "%STATUS%"}}}
    got = errors(simple_config(up.address, filters_after=[log]))
    assert sorted(got) == sorted([
        f + '/when/statusmin: unknown key "statusmin"',
        f + "/when/sample: expected a number 0..1, got 2",
        f + "/flush_ms: expected an integer 1..3600000, got 0",
        f + '/format/tmpl: unknown key "tmpl"',
        f + '/format/template: missing: a format object needs a "template" string',
    ]), got


@case
def long_values_are_cut():
    up = Upstream()
    cfg = simple_config(up.address, filters_before=[jwt({"issuer": list(range(100))})])
    got = errors(cfg)
    line = [g for g in got if g.startswith("/listeners/0/filters/0/config/providers/0/issuer: ")]
    assert len(line) == 1, got
    value = line[0].split(", got ", 1)[1]
    assert value.startswith("[0,1,2,") and value.endswith("...") and len(value) == 60, value


@case
def extension_modules_use_the_same_wordings():
    up = Upstream()

    def ext(name, config):
        path = os.path.join(EXT_DIR, "lib%s.so" % name)
        assert os.path.exists(path), "build the extension first: %s" % path
        return {"type": name, "module": path, "config": config}
    f = "/listeners/0/filters/0/config"
    # C++ SDK module.
    expect(simple_config(up.address, filters_before=[ext("ext_authz", {"cluster": 42})]),
           f + "/cluster: expected a string, got 42")
    expect(simple_config(up.address, filters_before=[ext("ext_authz", {"cluster": ""})]),
           f + '/cluster: expected a non-empty string, got ""')
    expect(simple_config(up.address, filters_before=[ext("ip_allowlist", {"allow": [{"a": 1}]})]),
           f + '/allow/0: expected a string, got {"a":1}')
    # C module with its own parser.
    expect(simple_config(up.address, filters_before=[ext("header_rewrite",
                                                         {"request": {"set": {"x-a": 42}}})]),
           f + "/request/set/x-a: expected a string, got 42")
    expect(simple_config(up.address, filters_before=[ext("header_rewrite", {"request": [1, "a"]})]),
           f + '/request: expected an object, got [1,"a"]')
    # Long values are cut the same way in a module as in the core.
    long_value = list(range(100))
    core_cut = [g.split(", got ", 1)[1] for g in
                errors(simple_config(up.address, filters_before=[jwt({"issuer": long_value})]))
                if g.startswith("/listeners/0/filters/0/config/providers/0/issuer: ")]
    for name, config, at in (("header_rewrite", {"request": {"set": {"x-a": long_value}}},
                              "/request/set/x-a"),
                             ("ext_authz", {"cluster": long_value}, "/cluster")):
        expect(simple_config(up.address, filters_before=[ext(name, config)]),
               f + at + ": expected a string, got " + core_cut[0])


run_cases()
