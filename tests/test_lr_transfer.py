"""Learning-rate transfer, measured: ``jaxlimit sweep lr`` and :func:`jaxlimit.training.transfer.lr_transfer`
(docs/parameterisations.md#transfer-measured)."""

import json
import math

import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.models.parameterisation import LayerScaling, Parameterisation, get_parameterisation
from jaxlimit.training.transfer import lr_transfer, parabola_vertex, summarise


def test_parabola_vertex_is_exact_on_a_parabola_and_refuses_an_unbracketed_minimum():
    log_alpha = np.log([0.01, 0.03, 0.05, 0.2, 0.5])  # uneven steps
    for centre in (-3.5, -2.6, -2.0):  # between the grid points, on a point, off centre
        u = 2.0 * (log_alpha - centre) ** 2 + 1.0
        if 0 < np.argmin(u) < len(u) - 1:
            assert parabola_vertex(log_alpha, u) == pytest.approx(centre, abs=1e-12)
    assert math.isnan(parabola_vertex(log_alpha, (log_alpha - 5.0) ** 2))  # minimum at the top end


def test_summarise_recovers_a_known_drift_and_its_verdict():
    """Synthetic losses L(α) = exp((log α − log α*(n))²) with α*(n) = n^s, seeds jittered: the fitted
    drift is s within its interval, and the verdict says whether s is 0."""
    widths = (64, 128, 256, 512)
    alphas = tuple(2.0 ** k for k in range(-12, 5))
    rng = np.random.default_rng(0)
    for s, word in ((0.0, "consistent"), (-1.0, "inconsistent")):
        centre = np.log(np.asarray(widths, float))[:, None] * s + rng.normal(0, 0.05, (4, 4))  # (W, S)
        u = (np.log(alphas)[None, None, :] - centre[..., None]) ** 2
        final = np.exp(u)
        losses = np.stack([np.full_like(final, 1e9), final], axis=-1)  # (W, S, K, 2): start, end
        r = summarise(get_parameterisation("mup"), "sgd", widths, alphas, 1, 0.1, 0.95, losses)
        lo, hi = r.fit.slope_ci
        assert lo <= s <= hi and abs(r.fit.slope - s) < 0.05
        assert r.verdict["transfer"] == word


# A 3-layer MLP, widths 32 and 256, 10 SGD steps, 3 networks; rates a factor 2 apart around each
# parameterisation's optima (μP's near 2, standard's near 2^-2 at 32 and 2^-5 at 256).
ALPHAS = {"mup": tuple(2.0 ** k for k in range(-2, 4)), "standard": tuple(2.0 ** k for k in range(-7, 1))}


def _sweep(name):
    return lr_transfer(name, optimizer="sgd", widths=(32, 256), alphas=ALPHAS[name], steps=10, seeds=3, seed=0)


def test_mup_optimal_learning_rate_does_not_drift_with_the_width():
    r = _sweep("mup")
    assert r.resolved.all()
    assert r.verdict == {"transfer": "consistent"}
    assert abs(r.fit.slope) < 0.15
    assert abs(np.log2(r.optimum[1] / r.optimum[0])) < 0.5  # the same α* at 32 and 256 within a factor √2


def test_library_refuses_bad_input_before_training():
    for kwargs, fragment in (({"widths": (64,)}, "at least two distinct widths"),
                             ({"alphas": (0.1, 0.0, 1.0)}, "positive and finite"),
                             ({"alphas": (0.1, 1.0)}, "at least 3 distinct rates"),
                             ({"seeds": 1}, "seeds must be at least 2"),
                             ({"optimizer": "lion"}, "unknown optimizer")):
        with pytest.raises(InputError, match=fragment):
            lr_transfer("mup", **kwargs)
    with pytest.raises(InputError, match="unknown parameterisation"):
        lr_transfer("mupp")
    huge = Parameterisation("huge", LayerScaling(0, 0, 0, 0), LayerScaling(0, 0.5, 0, 0), LayerScaling(0, 40, 0, 0))
    with pytest.raises(InputError, match="float32"):
        lr_transfer(huge, widths=(64, 128))


def test_standard_sgd_optimal_learning_rate_falls_like_one_over_the_width(tmp_path):
    """Through the command (the same run as ``_sweep("standard")``): the report's drift and its verdict."""
    from jaxlimit import cli

    out = tmp_path / "report"
    code = cli.main(["sweep", "lr", "--parameterisation", "standard", "--optimizer", "sgd", "--widths", "32,256",
                     "--alphas", ",".join(f"{a:g}" for a in ALPHAS["standard"]), "--steps", "10", "--ensemble", "3",
                     "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == {"transfer": "inconsistent"}
    m = report["metrics"]
    lo, hi = m["slope_ci"]
    assert -1.4 < m["slope"] < -0.7 and lo <= -1.0 <= hi and hi < -0.4
    assert m["resolved_widths"] == [32, 256] and m["optimal_alpha"][1] < m["optimal_alpha"][0] / 4
    assert report["config"]["alphas"] == list(ALPHAS["standard"])
    for name in ("loss_vs_alpha.png", "optimal_alpha.png", "optima.csv", "losses.csv"):
        assert (out / name).exists()


@pytest.mark.parametrize("argv,fragment", [
    (["--widths", "64"], "--widths must have 2 to"),
    (["--alphas", "0,0.1,1"], "--alphas must be > 0"),
    (["--alphas", "0.1,1"], "--alphas must have 3 to"),
    (["--parameterisation", "sp"], "--parameterisation must be one of"),
    (["--optimizer", "lion"], "--optimizer must be one of"),
    (["--ensemble", "1"], "--ensemble must be at least 2"),
])
def test_command_refuses_bad_input(argv, fragment, capsys, tmp_path, monkeypatch):
    from tests.helpers.refusal import assert_refused

    assert_refused(["sweep", "lr", *argv], fragment, capsys, tmp_path, monkeypatch)


def test_command_offers_every_preset():
    from jaxlimit.experiments.sweep_lr.config import PARAMETERISATIONS
    from jaxlimit.models.parameterisation import PRESETS

    assert PARAMETERISATIONS == PRESETS


def test_figures_fit_their_text_and_draw_the_optima():
    """The two figures on a synthetic sweep (no training): titles, labels and legends inside the figure."""
    from jaxlimit.figures import lr_loss_figure, lr_optimum_figure
    from tests.helpers.reports import assert_text_fits

    widths, alphas = (64, 128, 256), tuple(2.0 ** k for k in range(-8, 3))
    centre = -np.log(np.asarray(widths, float))[:, None] + np.zeros((3, 2))
    final = np.exp((np.log(alphas)[None, None, :] - centre[..., None]) ** 2 / 4)
    r = summarise(get_parameterisation("standard"), "sgd", widths, alphas, 1, 0.1, 0.95,
                  np.stack([np.full_like(final, 1e9), final], axis=-1))
    facts = dict(parameterisation="standard", widths=list(widths), members=2)
    figures = {"loss_vs_alpha": lr_loss_figure(r, facts), "optimal_alpha": lr_optimum_figure(r, facts)}
    assert_text_fits(figures)
    for fig in figures.values():
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and fig.get_suptitle()
    assert "transfer: inconsistent" in figures["optimal_alpha"].axes[0].get_title()
