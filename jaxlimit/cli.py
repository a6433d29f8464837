"""The ``jaxlimit`` command line: argument parsing and error messages only.

Every experiment writes ``report.json``, ``report.md`` and PNG figures to
``--out``. Bad input exits with status 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit with status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's interface
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from jaxlimit.experiments import EXPERIMENTS, SWEEPS

    parser = _Parser(
        prog="jaxlimit",
        description="Simulate ensembles of finite-width networks and compare them with "
                    "their infinite-width limits. Each experiment writes report.json, "
                    "report.md and PNG figures to --out.",
    )
    sub = parser.add_subparsers(dest="command", metavar="EXPERIMENT", parser_class=_Parser)
    for name, mod in EXPERIMENTS.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    if SWEEPS:
        sweep = sub.add_parser("sweep", help="run an experiment across widths (or γ) and fit slopes")
        sweep_sub = sweep.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
        for name, mod in SWEEPS.items():
            p = sweep_sub.add_parser(name, help=mod.HELP, description=mod.__doc__)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("JAX_ENABLE_X64", "1")
    import jax

    # Limits are solved in float64; ensembles pass float32 explicitly.
    jax.config.update("jax_enable_x64", True)
    from jaxlimit.errors import InputError
    from jaxlimit.report import write_report

    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        report = args._run(args)
        out = write_report(report, args.out)
    except InputError as e:
        print(f"jaxlimit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxlimit: interrupted", file=sys.stderr)
        return 130
    verdicts = ", ".join(f"{k}: {v}" for k, v in report.verdict.items())
    print(f"{report.experiment}: report written to {out}/report.md" + (f" ({verdicts})" if verdicts else ""))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
