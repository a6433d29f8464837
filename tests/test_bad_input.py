"""Bad input is refused before any computation: one line, exit 2, nothing written.

The command-line table runs every case through ``jaxlimit.cli.main`` with the
experiment runner replaced by a trap, so a case that slipped past validation
and started computing fails loudly; the library table checks that public
calls raise ``InputError`` naming the argument.
"""

from __future__ import annotations

import errno
import math

import jax
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit import cli


from tests.helpers.refusal import _trap, assert_refused

CLI_CASES = [
    # (argv, fragment of the one-line error)
    (["ensemble", "--width", "0"], "--width must be ≥ 1"),
    (["ensemble", "--width", "1e10"], "--width must be at most"),
    (["ensemble", "--width", "2.5"], "expected an integer"),
    (["ensemble", "--width", "nan"], "expected an integer"),
    (["ensemble", "--activation", "swish"], "--activation must be one of"),
    (["ensemble", "--scaling", "2"], "--scaling"),
    (["ensemble", "--scaling", "banana"], "--scaling"),
    (["ensemble", "--alpha", "nan"], "--alpha must be a finite number"),
    (["ensemble", "--alpha", "-1"], "--alpha must be > 0"),
    (["ensemble", "--alpha", "1e30"], "--alpha must be at most"),
    (["ensemble", "--alpha", "inf"], "--alpha must be a finite number"),
    (["ensemble", "--t-max", "1e9"], "--t-max must be at most"),
    (["ensemble", "--t-max", "0"], "--t-max must be > 0"),
    (["ensemble", "--t-max", "5000", "--width", "1000000"], "--t-max needs"),
    (["ensemble", "--ensemble", "0"], "--ensemble must be ≥ 1"),
    (["ensemble", "--ensemble", "1e9"], "--ensemble must be at most"),
    (["ensemble", "--ensemble", "5000000", "--n-times", "5000"], "of memory"),
    (["ensemble", "--probes", "-1"], "--probes must be ≥ 0"),
    (["ensemble", "--probes", "1e8"], "--probes must be at most"),
    (["ensemble", "--points", "0"], "--points must be ≥ 1"),
    (["ensemble", "--n-times", "1e8"], "--n-times must be at most"),
    (["ensemble", "--seed", "123456789012345678901234567890"], "--seed must be at most"),
    (["ensemble", "--seed", "-3"], "--seed must be ≥ 0"),
    (["ensemble", "--data-seed", "-1"], "--data-seed must be ≥ 0"),
    (["ensemble", "--data", "digits", "--dim", "3"], "--dim does not apply to --data digits"),
    (["ensemble", "--data", "mnist"], "--data must be one of"),
    (["ensemble", "--data", "digits", "--points", "2000"], "distinct images"),
    (["ensemble", "--data", "digits", "--points", "300", "--probes", "61"], "distinct images"),
    (["ensemble", "--memory-gb", "1e-12"], "--memory-gb must be ≥ 0.01"),
    (["ensemble", "--memory-gb", "0"], "--memory-gb must be ≥ 0.01"),
    (["ensemble", "--method", "newton"], "--method must be one of"),
    (["ensemble", "--method", "minibatch", "--batch-size", "100", "--points", "6"], "--batch-size must be at most"),
    (["ensemble", "--batch-size", "0"], "--batch-size must be ≥ 1"),
    (["ensemble", "--loss", "hinge"], "--loss must be one of"),
    (["ensemble", "--init", "cauchy"], "--init must be one of"),
    (["ensemble", "--c-std", "0"], "--c-std must be > 0"),
    (["ensemble", "--w-std", "-1"], "--w-std must be > 0"),
    (["ensemble", "--chunk-size", "0"], "--chunk-size must be ≥ 1"),
    (["ensemble", "--dim", "100000", "--points", "100000"], "of memory"),
    (["ensemble", "--out", ""], "--out must name a directory"),
    (["ensemble", "--unknown-option", "3"], "unrecognized arguments"),
    (["xavier", "--scaling", "mean-field"], "unrecognized arguments"),
    (["xavier", "--loss", "huber"], "unrecognized arguments"),
    (["xavier", "--init", "uniform"], "unrecognized arguments"),
    (["xavier", "--level", "1.5"], "--level must be at most"),
    (["xavier", "--level", "0"], "--level must be > 0"),
    (["xavier", "--ensemble", "5"], "--ensemble must be at least P + 2"),
    (["xavier", "--compare-times", "0,5"], "--compare-times must lie in [0, t_max = 2]"),
    (["xavier", "--compare-times", "1,1"], "--compare-times has a repeated entry"),
    (["xavier", "--compare-times", "-1"], "--compare-times must be ≥ 0"),
    (["xavier", "--compare-times", "1,,2"], "expected comma-separated numbers"),
    (["xavier", "--long-members", "-1"], "--long-members must be ≥ 0"),
    (["xavier", "--long-time", "nan"], "--long-time must be a finite number"),
    (["sweep", "xavier", "--widths", "64"], "--widths must have 2 to"),
    (["sweep", "xavier", "--widths", "64,64,128"], "--widths has a repeated entry"),
    (["sweep", "xavier", "--widths", "64,0"], "--widths must be ≥ 1"),
    (["sweep", "xavier", "--widths", "64,a"], "expected an integer"),
    (["sweep", "xavier", "--width", "64"], "unrecognized arguments"),
    (["nonsense"], "invalid choice"),
]


@pytest.mark.parametrize("argv,fragment", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_command_line_refuses_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)


def test_output_that_is_a_file_or_foreign_directory_is_refused(tmp_path, capsys, monkeypatch):
    import jaxlimit.experiments as experiments

    monkeypatch.setattr(experiments, "run", _trap)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert cli.main(["ensemble", "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "draft.tex").write_text("keep me")
    assert cli.main(["ensemble", "--out", str(foreign)]) == 2
    assert "not a jaxlimit report" in capsys.readouterr().err
    assert (foreign / "draft.tex").read_text() == "keep me" and afile.read_text() == "keep me"


def test_read_only_output_is_refused(tmp_path, capsys, monkeypatch):
    import jaxlimit.config as config

    real_access = config.os.access
    monkeypatch.setattr(config.os, "access", lambda p, mode: False if "ro" in str(p) else real_access(p, mode))
    (tmp_path / "ro").mkdir()
    assert cli.main(["ensemble", "--out", str(tmp_path / "ro" / "rep")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_full_disk_while_writing_the_report_leaves_nothing(tmp_path, capsys, monkeypatch):
    import jaxlimit.report as report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "_write_table", full)
    out = tmp_path / "rep"
    code = cli.main(["ensemble", "--width", "8", "--ensemble", "4", "--t-max", "0.25", "--n-times", "1",
                     "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "No space left on device" in err and len(err.splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_sweep_alone_prints_the_sweep_help(capsys):
    assert cli.main(["sweep"]) == 2
    assert "TARGET" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxlimit {jl.__version__}"  # one source of the version


def _data():
    return jl.synthetic_problem(jax.random.key(0), 4, 3, 1)


def _equinox_module():
    import equinox as eqx

    return eqx.nn.MLP(3, "scalar", 8, 1, key=jax.random.key(0))


LIBRARY_CASES = [
    (lambda: jl.TwoLayer(float("nan"), 3), "width"),
    (lambda: jl.TwoLayer(math.inf, 3), "width"),
    (lambda: jl.TwoLayer(0, 3), "width"),
    (lambda: jl.TwoLayer(8, 2.5), "dim"),
    (lambda: jl.TwoLayer(8, 3, "xavier", "swish"), "activation"),
    (lambda: jl.TwoLayer(8, 3, 0.3), "gamma"),
    (lambda: jl.InitLaw(c_mean=float("nan")), "c_mean"),
    (lambda: jl.InitLaw(c_std=0.0), "c_std"),
    (lambda: jl.InitLaw(kind="cauchy"), "initial law"),
    (lambda: jl.Trainer(alpha="1"), "alpha"),
    (lambda: jl.Trainer(alpha=-1.0), "alpha"),
    (lambda: jl.Trainer(method="minibatch", batch_size=2.5), "batch_size"),
    (lambda: jl.Trainer(method="newton"), "method"),
    (lambda: jl.synthetic_problem(jax.random.key(0), n_train=2.5), "n_train"),
    (lambda: jl.synthetic_problem(jax.random.key(0), n_probe=-1), "n_probe"),
    (lambda: jl.synthetic_problem(jax.random.key(0), dim=10**7), "dim"),
    (lambda: jl.make_dataset(np.ones((3, 2)) * 1j, np.ones(3)), "complex"),
    (lambda: jl.make_dataset(np.full((3, 2), np.nan), np.ones(3)), "NaN"),
    (lambda: jl.make_dataset(np.ones((3, 2)), np.ones(4)), "y_train"),
    (lambda: jl.run_ensemble(jl.TwoLayer(8, 3), _data(), times=[1.0], n_members=2, seed=2**70), "seed"),
    (lambda: jl.run_ensemble(jl.TwoLayer(8, 3), _data(), times=[1e9], n_members=2), "2^31"),
    (lambda: jl.run_ensemble(jl.TwoLayer(8, 3), _data(), times=[1.0], n_members=2.5), "ensemble size"),
    (lambda: jl.Guards(divergence_threshold=-1), "divergence_threshold"),
    (lambda: jl.Execution(memory_budget=1e-12), "memory_budget"),
    (lambda: jl.run_ensemble(_equinox_module(), _data(), times=[1.0], n_members=2), "jaxlimit.from_equinox"),
    (lambda: jl.run_ensemble((lambda k: 0, lambda p, x: x), _data(), times=[1.0], n_members=2),
     "jaxlimit.UserNetwork"),
    (lambda: jl.run_ensemble(jl.TwoLayer(8, 3), _data(), "online", times=[1.0], n_members=2), "Trainer"),
    (lambda: jl.Gaussian(np.zeros(2), np.diag([1.0, -1.0])), "positive semi-definite"),
    (lambda: jl.Gaussian(np.zeros(2), np.eye(3)), "shape"),
    (lambda: jl.Gaussian(np.array([np.nan, 0.0]), np.eye(2)), "finite"),
    (lambda: jl.compare_gaussian(np.ones((3, 2)), jl.Gaussian(np.zeros(2), np.eye(2))), "P + 2"),
    (lambda: jl.stream_key(-1, "data"), "seed"),
    (lambda: jl.stream_key(0, ""), "name"),
]


@pytest.mark.parametrize("call,fragment", LIBRARY_CASES, ids=[f"lib{i}" for i in range(len(LIBRARY_CASES))])
def test_library_refuses_with_input_error(call, fragment):
    with pytest.raises(jl.InputError) as info:
        call()
    message = str(info.value)
    assert fragment in message and len(message.splitlines()) == 1


def test_corrupt_result_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(jl.InputError, match="cannot read ensemble result"):
        jl.EnsembleResult.load(bad)


def test_the_digits_count_used_by_the_option_checks_is_right():
    from jaxlimit.experiments.options import DIGITS_IMAGES

    jl.digits_problem(DIGITS_IMAGES - 1, 1)
    with pytest.raises(jl.InputError, match="distinct images"):
        jl.digits_problem(DIGITS_IMAGES, 1)
