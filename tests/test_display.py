"""Results display as tables in Jupyter, with the numbers the objects hold."""

import jax
import numpy as np

import jaxlimit as jl
from jaxlimit.display import format_value, markdown_table
from jaxlimit.stats.verdict import verdict_over_times


def test_format_value_and_markdown_table():
    assert format_value(0.123456) == "0.1235" and format_value(None) == "n/a"
    assert format_value(list(range(20))) == "[20 values]" and format_value({"a": 1.0, "b": [1, 2]}) == "a 1, b [1, 2]"
    assert markdown_table(["x", "y"], [(1, 2.5)]).splitlines() == ["| x | y |", "| --- | --- |", "| 1 | 2.5 |"]


def test_results_display_their_numbers():
    data = jl.synthetic_problem(jax.random.key(0), 4, 3, 1)
    model = jl.TwoLayer(16, 3)
    result = jl.run_ensemble(model, data, times=[0.5, 1.0], n_members=40, seed=0)
    text = result._repr_markdown_()
    assert "40 members (0 diverged), 3 saved times, 5 points (4 training)" in text
    assert format_value(float(np.mean(result.loss[:, -1]))) in text.splitlines()[-1]
    prediction = jl.xavier_limit(model, data, jl.Trainer()).predict(result.times)
    verdict = verdict_over_times(result.outputs, prediction, [0, 2], times=result.times)
    rows = verdict._repr_markdown_().splitlines()
    assert rows[0].startswith(f"**{verdict.verdict}**") and len(rows) == 2 + 2 + 2
    assert format_value(verdict.comparisons[1].smallest_pvalue) in rows[-1]
    comparison = verdict.comparisons[0]._repr_markdown_()
    assert f"| mean_error_z | {format_value(verdict.comparisons[0].mean_error_z)} |" in comparison
