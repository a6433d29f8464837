"""Reports and results that tell the truth and display natively: the glossary linked from every
report, the configuration as the run used it, HTML and short reprs, DataFrames, progress."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.display import html_table, show_progress
from jaxlimit.glossary import explained, glossary_markdown
from jaxlimit.report import write_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from jaxlimit.experiments.ensemble.config import EnsembleConfig

    out = tmp_path_factory.mktemp("ens") / "r"
    config = EnsembleConfig(width=8, ensemble=8, t_max=0.25, n_times=1, seed=4, no_progress=True, out=str(out))
    rep = jl.run(config)
    write_report(rep, out)
    return rep, out


def test_the_glossary_is_docs_metrics_md_and_every_report_links_it(report):
    assert (ROOT / "docs" / "metrics.md").read_text() == glossary_markdown()
    rep, out = report
    text = (out / "report.md").read_text()
    assert "metrics.md" in text.split("## Metrics")[1].splitlines()[2]
    assert all(explained(k) for k in rep.metrics), [k for k in rep.metrics if not explained(k)]
    for name in ("mean_error_z", "cov_rel_error_null", "bures_w2_resolution", "mean_drift_resolution",
                 "ntk_change_final", "slope_pathwise"):  # the kernel-regime commands' effect sizes
        assert explained(name), name


def test_the_glossary_explains_names_by_family_only_where_the_family_is_known():
    from jaxlimit.glossary import METRICS, SECTIONS, meaning

    assert set(SECTIONS) <= set(METRICS)
    # Teacher-student's per-K names: the base's line, for that K; an unknown base is not explained.
    assert meaning("saddle_value_K5").endswith("(for K = 5)") and "saddle" in meaning("saddle_value_K5")
    assert not explained("no_such_metric_K2") and not explained("no_such_metric")
    # An explicit line wins over a family's (a slope against n_eff is not one against the width).
    assert "n_eff" in meaning("slope_output_gap_nested")
    assert "resolved" in meaning("cov_rel_error_by_width_resolution")


def test_report_json_config_is_what_the_run_used(report):
    rep, out = report
    config = json.loads((out / "report.json").read_text())["config"]
    assert config["dim"] == 4 and config["data_seed"] == 4  # given as None: the computed defaults
    assert config["width"] == 8 and config["seed"] == 4


def test_reports_and_results_display_in_notebooks(report):
    rep, _ = report
    html = rep._repr_html_()
    assert html.count('<img src="data:image/png;base64,') == len(rep.figures) >= 1
    assert "metrics.md" in html and "<code>n_members</code>" in html and "<details>" in html
    assert repr(rep).startswith("Report('ensemble';") and "\n" not in repr(rep)
    data = jl.synthetic_problem(jax.random.key(0), 4, 3, 1)
    model = jl.MLP((16,), dim=3, time_step=0.05)
    assert repr(model) == ("MLP(parameterisation='ntk', widths=(16,), dim=3, activation='relu', W_std=1, b_std=0, "
                           "time_step=0.05)")
    result = jl.run_ensemble(model, data, jl.Trainer(method="fullbatch"), times=[0.5], n_members=4,
                             execution=jl.Execution(progress=False))
    line = repr(result)
    assert "\n" not in line and line.startswith("EnsembleResult(4 members; 0 diverged; t = 0, 0.5; 5 points")
    assert "trainer fullbatch" in line
    html = result._repr_html_()
    assert "<table" in html and "4 members (0 diverged)" in html
    assert html.count("<tr>") == 6 + 1 + 2  # model, trainer, dataset, program, lanes, dtype; header; two times

    class Line(jl.Limit):
        """The prediction f_t = 0 with unit variance."""

        def predict(self, times):
            t = np.atleast_1d(times)
            return jl.Gaussian(np.zeros((len(t), 1)), np.ones((len(t), 1, 1)))

    assert "<b>Line</b>: The prediction f_t = 0 with unit variance." in Line()._repr_html_()


def test_tables_as_dataframes_when_pandas_is_there(report):
    rep, _ = report
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(jl.InputError, match="need pandas: pip install pandas"):
            rep.to_dataframe()
        return
    frame = rep.to_dataframe()
    assert list(frame.columns) == ["metric", "value", "meaning"] and len(frame) == len(rep.metrics)
    assert set(rep.dataframes()) == set(rep.tables)


def test_html_table_escapes_and_progress_follows_the_terminal(monkeypatch):
    table = html_table(["a<b", "x"], [("<script>", 0.123456)])
    assert "&lt;script&gt;" in table and "<td style=\"text-align:left\">0.1235</td>" in table
    assert "<th>a&lt;b</th>" in table

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    assert show_progress(Terminal()) and not show_progress(object())
    monkeypatch.setenv("CI", "true")
    assert not show_progress(Terminal())
