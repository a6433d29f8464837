"""Help that tells the truth: every default ``--help`` states is the one the code applies."""

from __future__ import annotations

import re

import pytest

from jaxlimit import cli
from jaxlimit.config import specs
from jaxlimit.experiments import COMMANDS, SWEEPS
from jaxlimit.experiments import options as opt
from jaxlimit.data import data_seed, two_layer_data
from jaxlimit.training.problem import saved_times, with_compare_times
from jaxlimit.names import DEFAULT_LANES

CONFIGS = {**COMMANDS, **{f"sweep {k}": v for k, v in SWEEPS.items()}}
NO_DEFAULT = {"coordinator", "num_processes", "process_id", "checkpoint"}  # None means "not used"


def _help(name: str) -> str:
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices
    words = name.split()
    p = sub[words[0]] if len(words) == 1 else sub["sweep"]._subparsers._group_actions[0].choices[words[1]]
    return " ".join(p.format_help().split())


def _times_of(text: str, t_max: float) -> list[float]:
    """Evaluate the help's "0, t_max/2 and t_max" at a given t_max."""
    terms = re.split(r",\s*(?![^(]*\))|\s+and\s+", text)  # not the comma inside min(1, t_max)
    return sorted({float(eval(t.replace("t_max", repr(t_max)), {"min": min})) for t in terms})


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_computed_default_in_help_is_what_the_code_applies(name):
    config_type = CONFIGS[name]
    text = _help(name)
    config = config_type()
    for field, spec, default in specs(config_type):
        if default is not None:
            continue
        if field in NO_DEFAULT:
            assert spec.computed is None
            continue
        assert spec.computed is not None, f"{name} --{field}: None default without a stated meaning"
        stated = spec.computed.describe(config_type)
        assert f"(default: {stated})" in text, (name, field)
        if field == "compare_times":
            for t_max in (config.t_max, 0.5, 3.0):
                c = config.replace(t_max=t_max)
                assert list(c.resolve("compare_times")) == _times_of(stated, t_max), (name, t_max)
                # every command merges the resolved times into its saved grid (deep_problem too)
                times, idx = with_compare_times(saved_times(c.t_max, c.n_times), c.resolve("compare_times"))
                assert [float(times[i]) for i in idx] == _times_of(stated, t_max), (name, t_max)
        elif field == "dim":
            synthetic, digits = (int(v) for v in re.findall(r"\d+", stated)[:2])
            assert config.resolve("dim") == two_layer_data(config).dim == synthetic
            assert stated.endswith(f"{digits} for digits") and digits == opt.DIGITS_DIM
        elif field == "data_seed":
            assert stated == "--seed"
            c = config.replace(seed=5)
            assert c.resolve("data_seed") == data_seed(c) == 5
        elif field == "chunk_size":
            assert f"at most {DEFAULT_LANES['cpu']} members on a CPU, {DEFAULT_LANES['gpu']} on an accelerator" \
                in stated
            assert c.resolve("chunk_size") is None if (c := config) else False  # known when the run starts
        elif field == "alpha":  # coord-check: the optimiser's base rate, as the library call applies it
            assert stated == "0.1 for SGD, 0.01 for Adam"
            assert config.replace(optimizer="sgd").resolve("alpha") == 0.1
            assert config.replace(optimizer="adam").resolve("alpha") == 0.01
            assert config.replace(optimizer="adam", alpha=0.3).resolve("alpha") == 0.3
        elif field == "alphas":  # sweep lr: the optimiser's grid, as the library call applies it
            from jaxlimit.training.transfer import default_alphas

            assert stated == "2^-10, 2^-9, …, 2^3 for SGD; 2^-14, …, 2^2 for Adam"
            assert config.replace(optimizer="sgd").resolve("alphas") == default_alphas("sgd") == tuple(
                2.0 ** k for k in range(-10, 4))
            assert config.replace(optimizer="adam").resolve("alphas") == default_alphas("adam") == tuple(
                2.0 ** k for k in range(-14, 3))
            assert config.replace(alphas=(0.1, 0.2, 0.4)).resolve("alphas") == (0.1, 0.2, 0.4)
        elif field == "step":  # feature-learning: the ODE's step, or the deep DMFT's own step grid
            from jaxlimit.experiments.feature_learning.config import STEP_GRID, STEP_ODE, STEP_SAMPLED

            assert stated.startswith(f"{STEP_ODE:g} at depth 1 with identity, {STEP_GRID:g} with identity at depth")
            assert config.step == config.resolve("step") == STEP_ODE
            assert config.replace(depth=2).step == STEP_GRID and config.replace(depth=2).replace(depth=1).step == STEP_ODE
            assert config_type(activation="erf").step == STEP_SAMPLED
            assert config_type(depth=2, step=0.125).resolve("step") == 0.125
        else:
            raise AssertionError(f"{name} --{field}: a computed default this test does not check")


def test_deep_compares_at_0_1_and_t_max_and_says_so():
    text = _help("deep")
    assert "(default: 0, min(1, t_max) and t_max)" in text and "t_max/2" not in text
    assert "(default: 0, t_max/2 and t_max)" in _help("xavier")


def test_one_meaning_for_step_and_chunk_size():
    steps = {name: spec.help for name, t in CONFIGS.items() for field, spec, _ in specs(t) if field == "step"}
    assert set(steps) == {"deep", "sweep deep", "three-layer", "teacher-student", "feature-learning",
                          "sweep feature-learning"}
    for name, help_text in steps.items():
        assert help_text.startswith("training time of one step") and "t = k · step" in help_text, name
    chunks = {spec.help for t in CONFIGS.values() for field, spec, _ in specs(t) if field == "chunk_size"}
    assert chunks == {"members per compiled call, rounded up to whole blocks of lanes on every device"}
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "blocks per compiled call" not in readme and "members per compiled call" in readme
