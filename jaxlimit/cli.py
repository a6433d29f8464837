"""The ``jaxlimit`` command line: generated from the experiment configurations.

Each command's options are the fields of its configuration class
(:mod:`jaxlimit.config`); the values are validated by building that
configuration, so every refusal happens before anything is computed or
written: one line on standard error, exit status 2, no traceback. Only this
module knows about argv.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys

from jaxlimit.config import Config, ConfigError, Spec, specs
from jaxlimit.errors import InputError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit with status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's interface
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0]}\n")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _parse_list(item):
    def parse(text: str) -> list:
        parts = [p.strip() for p in text.split(",")]
        if not parts or any(p == "" for p in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
        return [item(p) for p in parts]

    return parse


_TYPES = {"int": _parse_int, "float": _parse_float, "str": str, "path": str,
          "ints": _parse_list(_parse_int), "floats": _parse_list(_parse_float),
          "vector": _parse_list(_parse_float)}


def _default_text(spec: Spec, default, config_type: type) -> str:
    if default is None and spec.computed is not None:
        return f" (default: {spec.computed.describe(config_type)})"
    if default is None or spec.kind == "bool":
        return ""
    if isinstance(default, tuple):
        return f" (default: {','.join(f'{v:g}' for v in default)})"
    if isinstance(default, float):
        return f" (default: {default:g})"
    return f" (default: {default})"


def _add_command(sub, name: str, config_type: type[Config]) -> None:
    doc = inspect.cleandoc(config_type.__doc__ or "")
    p = sub.add_parser(name, help=config_type.HELP, description=doc, allow_abbrev=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field, spec, default in specs(config_type):
        group = groups.get(spec.group) or groups.setdefault(spec.group, p.add_argument_group(spec.group))
        option = "--" + field.replace("_", "-")
        help_text = spec.help
        if spec.choices:
            help_text += f": {', '.join(spec.choices)}"
        help_text = help_text.replace("%", "%%") + _default_text(spec, default, config_type)
        if spec.kind == "bool":
            group.add_argument(option, dest=field, action="store_true", help=help_text)
        else:
            group.add_argument(option, dest=field, type=_TYPES[spec.kind], default=default,
                               metavar=spec.metavar or field.upper(), help=help_text)
    p.set_defaults(_config_type=config_type)


def build_parser() -> argparse.ArgumentParser:
    from jaxlimit.experiments import COMMANDS, SWEEPS

    parser = _Parser(
        prog="jaxlimit", allow_abbrev=False,
        description="Simulate ensembles of finite-width networks and compare them with their "
                    "infinite-width limits. Each command writes report.json, report.md, figures "
                    "(PNG and PDF), CSV tables and data.npz to --out. The mathematics is in docs/.",
    )
    parser.add_argument("--version", action="version", version=f"jaxlimit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, config_type in COMMANDS.items():
        _add_command(sub, name, config_type)
    sweep = sub.add_parser("sweep", help="run an experiment across widths (or γ) and fit slopes",
                           allow_abbrev=False)
    sweep_sub = sweep.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
    for name, config_type in SWEEPS.items():
        _add_command(sweep_sub, name, config_type)
    sweep.set_defaults(_sweep_parser=sweep)
    return parser


def _version() -> str:
    from jaxlimit import __version__

    return __version__


_NEGATIVE = re.compile(r"^-\.?\d")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--xi -1,1,1`` → ``--xi=-1,1,1``: argparse would read "-1,1,1" as an option."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def parse_config(argv: list[str]) -> Config:
    """Parse ``argv`` into a validated configuration (exits 2 on bad options)."""
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(argv)))
    config_type = getattr(args, "_config_type", None)
    if config_type is None:
        target = getattr(args, "_sweep_parser", None) or parser
        target.print_help(sys.stderr)
        raise SystemExit(2)
    values = {field: getattr(args, field) for field, _, _ in specs(config_type)}
    prog = f"jaxlimit {args.command}" + (f" {args.target}" if getattr(args, "target", None) else "")
    try:
        return config_type(**values)
    except ConfigError as e:
        _fail(prog, e.for_command_line())
    except InputError as e:
        _fail(prog, str(e))


def _fail(prog: str, message: str):
    print(f"{prog}: error: {message.splitlines()[0]}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        config = parse_config(argv)
    except SystemExit as e:
        return int(e.code or 0)
    os.environ.setdefault("JAX_ENABLE_X64", "1")
    import warnings

    # Warnings of the engine (an unstable step, diverged members) as one line each.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    from jaxlimit.devices import enable_compilation_cache, use_cpu_cores

    try:
        use_cpu_cores()
    except InputError:  # JAX already running (main called from Python): keep its devices
        pass
    import jax

    # Limits are solved in float64; ensembles pass float32 explicitly, and
    # every random stream is the same with and without x64.
    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()
    from jaxlimit.experiments import run
    from jaxlimit.report import write_report

    try:
        if config.distributed or config.coordinator is not None:
            _start_processes(config)
        report = run(config, command_line=["jaxlimit", *argv])
        if jax.process_index() != 0:
            print(f"{report.experiment}: process {jax.process_index()} of {jax.process_count()} done")
            return 0
        out = write_report(report, config.out)
    except InputError as e:
        print(f"jaxlimit: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"jaxlimit: {e}" if str(e) else "jaxlimit: interrupted", file=sys.stderr)
        return 130
    verdicts = ", ".join(f"{k}: {v}" for k, v in report.verdict.items())
    print(f"{report.experiment}: report written to {out}/report.md" + (f" ({verdicts})" if verdicts else ""))
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _start_processes(config) -> None:
    import jax

    try:
        if config.coordinator is not None:
            jax.distributed.initialize(coordinator_address=config.coordinator,
                                       num_processes=config.num_processes, process_id=config.process_id)
        else:
            jax.distributed.initialize()
    except (RuntimeError, ValueError) as e:
        raise InputError(f"cannot start the processes: {str(e).splitlines()[0]}") from None


if __name__ == "__main__":
    sys.exit(main())
