"""`jaxlimit deep` and `jaxlimit sweep deep`: the verdict, its power at small width, refusals."""

import json

import numpy as np
import pytest

import jaxlimit.report
from jaxlimit.experiments import run
from jaxlimit.experiments.deep import DeepConfig
from jaxlimit.experiments.sweep_deep import SweepDeepConfig
from tests.helpers.refusal import assert_refused
from tests.helpers.reports import assert_text_fits

SMALL = dict(depth=2, t_max=4.0, n_times=8, no_progress=True, seed=3)


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory):
    return run(DeepConfig(width=128, ensemble=512, kernel_ensemble=16,
                          out=str(tmp_path_factory.mktemp("deep") / "r"), **SMALL))


def test_wide_networks_are_consistent_with_the_ntk_gaussian(wide_report):
    report = wide_report
    assert report.verdict["gaussian_limit"] == "consistent"
    m = report.metrics
    assert m["compare_times"] == [0.0, 1.0, 4.0]
    assert min(m["smallest_pvalue_by_time"]) > m["per_test_threshold"]
    # Each network stays near its own linearised path; the NTK at init matches the analytic one.
    assert m["pathwise_max_error"] < 0.2
    # The coupled finite-width bias of the mean is a small share of the mean's own noise at this width.
    assert abs(m["mean_drift_in_mean_se"]) < 2.0 and abs(m["mean_drift"]) < 0.02
    assert m["ntk_init_max_abs_z"] < 5.0 and m["ntk_init_mean_rel_error"] < 0.1
    assert 0 < m["ntk_change_final"] < 0.2
    assert m["limit_ode_max_error"] < 1e-8
    # The expected training loss of the limit and the ensemble's agree within noise.
    assert abs(m["final_train_loss_limit"] - m["final_train_loss_ensemble"]) < 5 * m["final_train_loss_ensemble_se"]


def test_narrow_networks_are_rejected(tmp_path):
    report = run(DeepConfig(width=8, ensemble=512, kernel_ensemble=0, out=str(tmp_path / "r"), **SMALL))
    assert report.verdict["gaussian_limit"] == "inconsistent"
    assert min(report.metrics["smallest_pvalue_by_time"]) < 1e-4
    # The coupling resolves the bias of the mean far beyond its noise, and it dominates the mean error.
    m = report.metrics
    assert abs(m["mean_drift_z"]) > 5.0 and abs(m["mean_drift_in_mean_se"]) > 2.5 and abs(m["mean_drift"]) > 0.04
    assert m["bures_w2_coupled_resolution"] == "resolved"


def test_report_files_and_figures(wide_report, tmp_path):
    from jaxlimit.report import write_report

    out = write_report(wide_report, tmp_path / "rep")
    rep = json.loads((out / "report.json").read_text())
    assert rep["experiment"] == "deep" and rep["provenance"]["versions"]["jax"]
    assert set(wide_report.figures) == {"trajectories", "marginal", "effects", "kernel"}
    assert_text_fits(wide_report)  # marginal.png's title wrapped, effects.png's labels inside their panels
    assert rep["config"]["dim"] == 8 and rep["config"]["compare_times"] == [0.0, 1.0, 4.0]
    for name in ("mean_error_resolution", "cov_rel_error_resolution", "bures_w2_resolution", "mean_drift_resolution"):
        assert rep["metrics"][name] in ("resolved", "not resolved at this size"), name
    for fig in wide_report.figures.values():
        assert "L = 2" in fig.get_suptitle() and "N = 128" in fig.get_suptitle() and "E = 512" in fig.get_suptitle()
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():
                assert ax.get_xlabel() and ax.get_ylabel()
    with np.load(out / "data.npz") as f:
        assert f["outputs"].shape == (512, 9, 10) and f["empirical_ntk"].shape == (16, 9, 10, 10)
    assert (out / "kernel_by_time.csv").exists() and (out / "kernel.pdf").exists()


def test_sweep_fits_the_three_rates(tmp_path):
    report = run(SweepDeepConfig(widths=(16, 64, 256), ensemble=128, kernel_ensemble=8, depth=2, t_max=2.0,
                                 n_times=4, no_progress=True, out=str(tmp_path / "s")))
    m = report.metrics
    assert m["widths"] == [16, 64, 256]
    # Each network's distance to its linearised path shrinks like n^-1/2.
    lo, hi = m["slope_pathwise_ci"]
    assert lo - 0.15 < -0.5 < hi + 0.15 and m["slope_pathwise"] < -0.3
    assert m["slope_ntk_change"] < -0.3
    assert set(m["slope_pathwise_against"]) == {"-0.5"}
    assert "rates" in report.figures and "by_width" in report.tables
    # Written as the command line writes it, so the report's glossary and figures are checked.
    jaxlimit.report.write_report(report, str(tmp_path / "s"))


DEEP_CASES = [
    (["deep", "--depth", "0"], "--depth must be ≥ 1"),
    (["deep", "--depth", "100"], "--depth must be at most"),
    (["deep", "--width", "0"], "--width must be ≥ 1"),
    (["deep", "--width", "1e9"], "--width must be at most"),
    (["deep", "--weight-scale", "0"], "--weight-scale must be > 0"),
    (["deep", "--weight-scale", "nan"], "--weight-scale must be a finite number"),
    (["deep", "--b-std", "-1"], "--b-std must be ≥ 0"),
    (["deep", "--alpha", "inf"], "--alpha must be a finite number"),
    (["deep", "--step", "0"], "--step must be > 0"),
    (["deep", "--step", "1e-12", "--t-max", "1e4"], "--step makes"),
    (["deep", "--activation", "swish"], "--activation must be one of"),
    (["deep", "--kernel-ensemble", "1"], "--kernel-ensemble must be 0 or at least 2"),
    (["deep", "--ensemble", "5"], "--ensemble must be at least P + 2"),
    (["deep", "--compare-times", "0,20"], "--compare-times must lie in"),
    (["deep", "--width", "100000", "--depth", "30"], "of memory"),
    (["deep", "--scaling", "xavier"], "unrecognized arguments"),
    (["sweep", "deep", "--widths", "64"], "--widths must have 2 to"),
    (["sweep", "deep", "--widths", "64,64"], "--widths has a repeated entry"),
    (["sweep", "deep", "--widths", "64,-8"], "--widths must be ≥ 1"),
    (["sweep", "deep", "--ensemble", "0"], "--ensemble must be ≥ 1"),
]


@pytest.mark.parametrize("argv,fragment", DEEP_CASES, ids=[" ".join(c[0]) for c in DEEP_CASES])
def test_deep_commands_refuse_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)
