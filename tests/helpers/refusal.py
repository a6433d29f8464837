"""Shared check of a command-line refusal: exit 2, one line, nothing computed, nothing written."""

from __future__ import annotations

from jaxlimit import cli


def _trap(*args, **kwargs):
    raise AssertionError("a bad option reached the computation")


def assert_refused(argv, fragment, capsys, tmp_path, monkeypatch) -> None:
    """Run ``jaxlimit argv`` with the experiment runner replaced by a trap and check the refusal."""
    import jaxlimit.experiments as experiments

    monkeypatch.setattr(experiments, "run", _trap)
    out = tmp_path / "out"
    full = list(argv) if argv[0] == "nonsense" or "--out" in argv else [*argv, "--out", str(out)]
    code = cli.main(full)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert fragment in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
