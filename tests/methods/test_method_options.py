"""Typed method options: declared by each method, checked when a SpikeConfig is built, round-tripped as JSON."""
from __future__ import annotations

import pytest

from spikemllm import SpikeConfig
from spikemllm.errors import ConfigError
from spikemllm.methods.gptq import GPTQOptions


@pytest.mark.parametrize("cfg,key", [
    ({"method": "gptq", "method_options": {"gtpq": {}}}, "gtpq"),                      # a typo of the method
    ({"method": "rtn", "method_options": {"gptq": {"progress": False}}}, "gptq"),      # a method not in `method`
    ({"method": ["rtn"], "method_options": {"gtpq": {}, "rtn": {"bogus": 1}}}, "gtpq"),
    ({"method": "rtn", "method_options": {"rtn": {"bogus": 1}}}, "bogus"),             # rtn takes no options
    ({"method": "gptq", "method_options": {"gptq": {"percdmp": 0.1}}}, "percdmp"),
    ({"method": "gptq", "method_options": {"gptq": {"percdamp": "high"}}}, "percdamp"),
    ({"method": "gptq", "method_options": {"gptq": {"act_order": 1}}}, "act_order"),
    ({"method": "smoothquant", "method_options": {"smoothquant": {"alpha": 1.5}}}, "alpha"),
    ({"method": "rotation", "method_options": {"rotation": {"seed": 1.5}}}, "seed"),
    ({"method": "external"}, "path"),
])
def test_bad_options_are_refused_when_the_config_is_built(cfg, key):
    with pytest.raises(ConfigError, match=key) as e:
        SpikeConfig(**cfg)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_a_stray_options_key_lists_the_allowed_names():
    with pytest.raises(ConfigError, match=r"allowed keys: rotation, gptq"):
        SpikeConfig(method=["rotation", "gptq"], method_options={"gtpq": {}})


def test_options_are_typed_and_defaulted():
    cfg = SpikeConfig(method=["rotation", "gptq"], method_options={"gptq": {"percdamp": 0.02, "act_order": True}})
    o = cfg.options_for("gptq")
    assert isinstance(o, GPTQOptions) and o.percdamp == 0.02 and o.act_order and o.blocksize == 128
    assert cfg.options_for("rotation").seed == 0
    with pytest.raises(Exception):
        o.percdamp = 1.0  # frozen


def test_json_round_trip_keeps_the_options():
    cfg = SpikeConfig(method=["smoothquant", "gptq"], timesteps={"vision": 3, "text": 4},
                      method_options={"smoothquant": {"alpha": 0.7}, "gptq": {"scale_search": 4, "progress": False}})
    back = SpikeConfig.from_json(cfg.to_json())
    assert back == cfg and back.options_for("smoothquant").alpha == 0.7
    with pytest.raises(ConfigError, match="bogus"):
        SpikeConfig.from_json(cfg.to_json().replace('"scale_search"', '"bogus"'))


def test_declare_method_is_the_registration_header(monkeypatch):
    """One decorator declares name, kind, Options and calibration, and registers; the built-ins use it."""
    from dataclasses import dataclass

    from spikemllm.methods import base

    @dataclass(frozen=True)
    class ToyOptions:
        level: int = 1

    monkeypatch.setattr(base, "_METHODS", dict(base._METHODS))  # the toy leaves the real registry as it was

    @base.declare_method("toy", "transform", ToyOptions, needs_calibration=True)
    class Toy(base.Method):
        def apply(self, ctx):
            pass

    assert base.get_method("toy") is Toy
    assert (Toy.name, Toy.kind, Toy.Options, Toy.needs_calibration) == ("toy", "transform", ToyOptions, True)
    assert Toy(level=3).opts == ToyOptions(level=3)
    with pytest.raises(ValueError, match="already registered"):
        base.declare_method("toy", "weights")(type("Toy2", (base.Method,), {}))
    expected = {"rtn": ("weights", False), "gptq": ("weights", True), "external": ("weights", False),
                "smoothquant": ("transform", True), "rotation": ("transform", False)}
    assert {n: (base.get_method(n).kind, base.get_method(n).needs_calibration) for n in expected} == expected
