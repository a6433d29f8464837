"""``jaxlimit feature-learning`` and ``sweep feature-learning`` at depth ≥ 2 (docs/feature-learning.md): the
ensemble mean against the deep DMFT's mean (no covariance there), the NTK's movement against the DMFT's,
and the refusals before any computation."""

import json

import numpy as np
import pytest

from jaxlimit.cli import main
from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig
from jaxlimit.experiments.feature_learning.deep import compare_mean, deep_limit
from jaxlimit.experiments.feature_learning.experiment import compared_times, scaled_data
from jaxlimit.limits.dmft_deep import deep_dmft
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT

# Depth 2, linear, N = 512, E = 300: the mean's O(1/N) shift (~1/N) is well below the ensemble's standard
# error (~0.1/√300), so the infinite-width mean must pass; dt = 0.1 keeps the DMFT grid at 11 steps.
ARGS = {"depth": 2, "width": 512, "ensemble": 300, "kernel_ensemble": 3, "t_max": 1.0, "n_times": 2, "step": 0.1,
        "points": 3, "probes": 1, "seed": 3}


def _argv(args: dict) -> list[str]:
    return [w for k, v in args.items() for w in (f"--{k.replace('_', '-')}", str(v))] + ["--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fldeep") / "r"
    assert main(["feature-learning", *_argv(ARGS), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    arrays = dict(np.load(out / "data.npz"))
    config = FeatureLearningConfig(**ARGS)
    return report, arrays, config, (out / "report.md").read_text()


def test_depth_two_mean_is_consistent_and_the_ntk_moves_as_deep_dmft_says(run):
    report, arrays, config, text = run
    assert report["verdict"] == {"dmft_mean": CONSISTENT}, report["metrics"]
    m = report["metrics"]
    assert m["covariance_compared"] is False and m["dmft_exact"] is True and m["dmft_mean_se_max"] == 0.0
    assert "The covariance is not compared" in text
    # The reported DMFT NTK movement is deep_dmft's, solved here directly.
    data = scaled_data(config)
    sol = deep_dmft(data.x_train, data.y_train, data.x_probe, depth=2, activation="identity", gamma0=1.0,
                    time_step=0.1, t_max=1.0)
    want = np.linalg.norm(sol.ntk[-1] - sol.ntk[0]) / np.linalg.norm(sol.ntk[0])
    assert want > 0.1  # it moves (the lazy limit's does not)
    assert abs(m["dmft_ntk_change_final"] - want) < 1e-12 and m["lazy_ntk_change_final"] == 0.0
    np.testing.assert_allclose(arrays["dmft_ntk"], sol.ntk[sol.at(arrays["times"])], rtol=0, atol=1e-12)
    np.testing.assert_allclose(arrays["dmft_mean"], sol.mean[sol.at(arrays["times"])], rtol=0, atol=1e-12)
    # The real networks' NTKs moved by about as much (3 networks of width 512: within 25%).
    assert abs(m["ntk_mean_change_final"] - want) < 0.25 * want, (m["ntk_mean_change_final"], want)


def test_a_mean_off_by_a_few_standard_errors_is_inconsistent_unless_its_own_error_covers_it(run):
    _, arrays, config, _ = run
    out = np.asarray(arrays["outputs"], np.float64)
    times, idx = compared_times(config)
    sol = deep_limit(config, scaled_data(config))
    assert compare_mean(out, sol, times, idx, 0.05).verdict == CONSISTENT
    se = out.std(axis=0, ddof=1) / np.sqrt(len(out))  # (T, P)
    k = sol.at(times)
    moved = sol.mean.copy()
    moved[k[-1], 1] += 5 * se[-1, 1]  # one point at t_max, 5 standard errors
    wrong = sol._replace(mean=moved)
    result = compare_mean(out, wrong, times, idx, 0.05)
    assert result.verdict == INCONSISTENT and result.tests[-1].mean_error_z > 3
    # A sampled limit whose own Monte Carlo error is 10 SE makes the same gap unresolved: the errors add.
    se_mc = np.zeros_like(sol.mean)
    se_mc[k[-1], 1] = 10 * se[-1, 1]
    assert compare_mean(out, wrong._replace(mean_se=se_mc), times, idx, 0.05).verdict == CONSISTENT


@pytest.mark.parametrize("argv, words", [
    (["--depth", "2", "--activation", "relu"], "smooth activation"),
    (["--activation", "abs"], "smooth activation"),
    (["--depth", "2", "--step", "0.001"], "DMFT grid"),
    (["--depth", "2", "--step", "0.03"], "step grid"),
    (["--depth", "2", "--activation", "erf", "--dmft-samples", "7"], "even"),
])
def test_command_refuses_before_compute(argv, words, tmp_path, capsys):
    for command in (["feature-learning"], ["sweep", "feature-learning"]):
        assert main([*command, *argv, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "r").exists()


def test_sweep_at_depth_two_solves_once_and_fits_the_mean_gap(tmp_path, monkeypatch):
    from jaxlimit.experiments.feature_learning import deep

    calls = []
    monkeypatch.setattr(deep, "deep_dmft", lambda *a, **k: calls.append(1) or deep_dmft(*a, **k))
    out = tmp_path / "s"
    args = {k: v for k, v in ARGS.items() if k not in ("width", "kernel_ensemble")}
    args |= {"ensemble": 32, "kernel_ensemble": 0, "widths": "8,16"}
    assert main(["sweep", "feature-learning", *_argv(args), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    assert m["widths"] == [8, 16] and m["covariance_compared"] is False
    assert {"slope_mean", "slope_mean_ci", "slope_mean_against_-1"} <= set(m)
    assert len(calls) == 1  # the DMFT does not depend on the width: solved once
    assert (out / "by_width.csv").read_text().splitlines()[0].startswith("width,n_members,n_diverged,verdict")
