"""``jaxlimit feature-learning`` and ``sweep feature-learning`` at depth ≥ 2 (docs/feature-learning.md): the
ensemble mean against the deep DMFT's mean (no covariance there), the NTK's movement against the DMFT's,
and the refusals before any computation."""

import json

import numpy as np
import pytest

from jaxlimit.cli import main
from jaxlimit.data import two_layer_data
from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig
from jaxlimit.limits import dmft_deep
from jaxlimit.limits.dmft_deep import deep_dmft
from jaxlimit.stats.compare import mean_test
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT

# Depth 2, linear, N = 256, E = 200: the mean's O(1/N) shift (a few 10⁻³ here) is below the ensemble's
# standard error (~0.004), so the infinite-width mean must pass; dt = 0.1 keeps the DMFT grid at 11 steps.
ARGS = {"depth": 2, "width": 256, "ensemble": 200, "kernel_ensemble": 2, "t_max": 1.0, "n_times": 2, "step": 0.1,
        "points": 3, "probes": 1, "seed": 3}


def _argv(args: dict) -> list[str]:
    return [w for k, v in args.items() for w in (f"--{k.replace('_', '-')}", str(v))] + ["--no-progress"]


def _dmft(config):
    """deep_dmft on the command's points, rescaled to |x|²/D = 1, solved here directly."""
    data = two_layer_data(config)
    scale = lambda x: x * np.sqrt(data.dim) / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return deep_dmft(scale(np.asarray(data.x_train, np.float64)), np.asarray(data.y_train, np.float64),
                     scale(np.asarray(data.x_probe, np.float64)), depth=2, activation="identity", gamma0=1.0,
                     time_step=0.1, t_max=1.0)


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
    sol = _dmft(config)
    want = np.linalg.norm(sol.ntk[-1] - sol.ntk[0]) / np.linalg.norm(sol.ntk[0])
    assert want > 0.1  # it moves (the lazy limit's does not)
    assert abs(m["dmft_ntk_change_final"] - want) < 1e-12 and m["lazy_ntk_change_final"] == 0.0
    np.testing.assert_allclose(arrays["dmft_ntk"], sol.ntk[sol.at(arrays["times"])], rtol=0, atol=1e-12)
    np.testing.assert_allclose(arrays["dmft_mean"], sol.mean[sol.at(arrays["times"])], rtol=0, atol=1e-12)
    # The real networks' NTKs moved by about as much (2 networks of width 256: within 25%).
    assert abs(m["ntk_mean_change_final"] - want) < 0.25 * want, (m["ntk_mean_change_final"], want)


def test_a_mean_off_by_a_few_standard_errors_is_inconsistent_unless_its_own_error_covers_it(run, tmp_path,
                                                                                              monkeypatch):
    report, arrays, config, _ = run
    out = np.asarray(arrays["outputs"], np.float64)  # (E, T, P), t = 0, 0.5, 1
    se = out.std(axis=0, ddof=1) / np.sqrt(len(out))
    sol = _dmft(config)
    k = sol.at(arrays["times"])
    gap = (out.mean(axis=0) - sol.mean[k])[-1, 1] / se[-1, 1]
    shift = 5 * se[-1, 1] * (1 if gap <= 0 else -1)  # 5 standard errors, away from the measured mean

    def moved(*args, **kwargs):
        s = deep_dmft(*args, **kwargs)
        mean = s.mean.copy()
        mean[k[-1], 1] += shift
        return s._replace(mean=mean)

    monkeypatch.setattr(dmft_deep, "deep_dmft", moved)
    again = tmp_path / "moved"
    assert main(["feature-learning", *_argv(ARGS | {"kernel_ensemble": 0}), "--out", str(again)]) == 0
    wrong = json.loads((again / "report.json").read_text())
    assert wrong["verdict"] == {"dmft_mean": INCONSISTENT} and wrong["metrics"]["mean_error_z"] > 4.5
    # A sampled limit whose own Monte Carlo error is 10 SE would cover the same gap: the errors add.
    assert mean_test(out[:, -1], sol.mean[k[-1]] + np.eye(4)[1] * shift, level=0.05 / 3).consistent is False
    mc = np.eye(4)[1] * 10 * se[-1, 1]
    assert mean_test(out[:, -1], sol.mean[k[-1]] + np.eye(4)[1] * shift, level=0.05 / 3, mean_se=mc).consistent


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
    calls = []
    monkeypatch.setattr(dmft_deep, "deep_dmft", lambda *a, **k: calls.append(1) or deep_dmft(*a, **k))
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
