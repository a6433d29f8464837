"""``jaxlimit coord-check``: config → coordinate check (:func:`~jaxlimit.training.coord_check.coord_check`)
→ slopes, verdicts, figures → Report."""

from __future__ import annotations

from jaxlimit.experiments.coord_check import figures
from jaxlimit.experiments.coord_check.config import CoordCheckConfig
from jaxlimit.training.coord_check import QUANTITIES, CoordCheck, coord_check, layer_names
from jaxlimit.experiments.problem import timed
from jaxlimit.report import Report


def _fmt(e) -> str:
    if e is None:
        return "—"
    if isinstance(e, tuple):
        return f"{e[0]:+g}" if e[0] == e[1] else f"[{e[0]:+g}, {e[1]:+g}]"
    return f"{e:+g}"


def run(config: CoordCheckConfig) -> Report:
    timing: dict = {}
    with timed(timing, "training"):
        result = coord_check(config.parameterisation, optimizer=config.optimizer, widths=config.widths,
                             depth=config.depth, steps=config.steps, lr=config.resolve("alpha"), seeds=config.ensemble,
                             dim=config.dim, batch=config.points, activation=config.activation, seed=config.seed,
                             tolerance=config.tolerance, level=1.0 - config.level)
    title = (f"{config.parameterisation} parameterisation, {config.optimizer}, L = {config.depth}, "
             f"η = {result.lr:g}, E = {config.ensemble}")
    figs = {f"coord_{q}": figures.coord_figure(result, q, f"{title}: {q}") for q in QUANTITIES}
    warnings = []
    if not result.stable:
        warnings.append(f"the {config.parameterisation} parameterisation predicts a growing coordinate with "
                        f"{config.optimizer}: its exponents are judged at the first step only")
    return Report(experiment="coord-check", config={"widths": list(result.widths)}, metrics=_metrics(result),
                  verdict=dict(result.verdict), timing=timing, figures=figs,
                  tables={"slopes": _slopes_table(result), "sizes": _sizes_table(result, config.depth)},
                  arrays={"sizes": result.sizes, "widths": list(result.widths)}, summary=_summary(config, result),
                  warnings=warnings)


def _metrics(result: CoordCheck) -> dict:
    per_layer: dict = {}
    for c in result.checks:
        per_layer.setdefault(c.layer, {}).setdefault(c.quantity, {})[f"step_{c.step}"] = c.as_dict()
    problem = result.first_problem
    return {
        "lr": result.lr,
        "stable": result.stable,
        "predicted_exponents": result.predicted,
        "first_problem_layer": None if problem is None else problem[0],
        "first_problem": None if problem is None else problem[1],
        "first_problem_sentence": result.problem_sentence(),
        "layers": per_layer,
        "n_slopes": len(result.checks),
        "n_slopes_inconsistent_with_mup": sum(c.mup != "consistent" for c in result.checks),
        "n_slopes_inconsistent_with_parameterisation": sum(
            c.parameterisation not in (None, "consistent") for c in result.checks),
        "parameterisation_exponents": result.parameterisation.as_dict(),
    }


def _slopes_table(result: CoordCheck) -> dict:
    rows = result.checks
    return {
        "step": [c.step for c in rows], "layer": [c.layer for c in rows], "quantity": [c.quantity for c in rows],
        "slope": [None if c.fit is None else c.fit.slope for c in rows],
        "slope_lo": [None if c.fit is None else c.fit.slope_ci[0] for c in rows],
        "slope_hi": [None if c.fit is None else c.fit.slope_ci[1] for c in rows],
        "predicted": [c.predicted for c in rows], "mup": [c.mup for c in rows],
        "parameterisation": [c.parameterisation for c in rows]}


def _sizes_table(result: CoordCheck, depth: int) -> dict:
    """One row per (width, member, step, layer, quantity): the RMS coordinate size."""
    sizes, names = result.sizes, layer_names(depth)
    tidy: dict = {k: [] for k in ("width", "member", "step", "layer", "quantity", "rms")}
    for w, n in enumerate(result.widths):
        for s in range(sizes.shape[1]):
            for t in range(sizes.shape[2]):
                for l, name in enumerate(names):
                    for q, quantity in enumerate(QUANTITIES):
                        for key, v in zip(tidy, (n, s, t, name, quantity, float(sizes[w, s, t, l, q]))):
                            tidy[key].append(v)
    return tidy


def _summary(config: CoordCheckConfig, result: CoordCheck) -> list[str]:
    step1 = [c for c in result.checks if c.step == 1 and c.quantity == "change"]
    return [
        f"Coordinate check of an MLP with {config.depth} hidden layers ({config.activation}) in the "
        f"**{config.parameterisation}** parameterisation trained by {config.optimizer} (η = {result.lr:g}) for "
        f"{config.steps} steps at widths {', '.join(str(n) for n in result.widths)}, {config.ensemble} networks each "
        f"(docs/parameterisations.md).",
        "",
        f"Verdict against μP (every slope consistent with 0 within ±{config.tolerance:g}): **{result.verdict['mup']}**; "
        f"against the {config.parameterisation} parameterisation's own predicted exponents: "
        f"**{result.verdict['parameterisation']}**.",
        f"{result.problem_sentence()[0].upper()}{result.problem_sentence()[1:]}.",
        "",
        "| layer | change slope at step 1 | interval | predicted |",
        "|---|---|---|---|",
        *[f"| {c.layer} | {_fmt(None if c.fit is None else round(c.fit.slope, 3))} | "
          f"{'—' if c.fit is None else f'[{c.fit.slope_ci[0]:+.3f}, {c.fit.slope_ci[1]:+.3f}]'} | "
          f"{_fmt(c.predicted)} |" for c in step1],
    ]
