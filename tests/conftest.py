"""Test-wide settings: float64 available (limits are solved in it, as on the
command line); ensembles still pass float32 explicitly."""

import os
import shutil
import tempfile

import jax
import pytest
import threadpoolctl

# The suite keeps JAX's one CPU device in its own processes and the helpers it starts, as it
# always ran (the command line still sets up one device per core itself);
# tests/test_devices.py checks what ``import jaxlimit`` does without this.
os.environ.setdefault("JAXLIMIT_CPU_CORES", "0")
# The suite's programs are small, so XLA's compilation, not their execution, is most of its time;
# without LLVM's expensive optimisations it compiles them about twice as fast. Every process the
# suite starts (workers, notebook kernels, command-line subprocesses) inherits the flags, so the
# runs a test compares bit for bit are compiled alike. Benchmarks and users keep XLA's defaults.
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0",
                                    "--xla_llvm_disable_expensive_passes=true"]).strip()
# The suite runs one worker per core, so a second BLAS thread per worker only competes with the
# other worker: its threads spin while they wait, and the statistics' matrix products (energy tests)
# cost about 30% more CPU with two threads than with one. The environment reaches the processes the
# suite starts (notebook kernels, command-line subprocesses); this process has loaded its BLAS already.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
threadpoolctl.threadpool_limits(1, user_api="blas")
# Commands run in-process keep compiled programs on disk (jaxlimit.devices.enable_compilation_cache).
# The suite gives them one fresh directory per run, shared by its workers and the processes they
# start: the suite never writes into the user's cache, and it starts cold as on a clean CI machine,
# so its measured time is the time CI sees.
_OWN_CACHE = "JAXLIMIT_SUITE_CACHE" not in os.environ  # true in the process that starts the suite
if _OWN_CACHE:
    os.environ["JAXLIMIT_SUITE_CACHE"] = tempfile.mkdtemp(prefix="jaxlimit-suite-cache-")
os.environ["XDG_CACHE_HOME"] = os.environ["JAXLIMIT_SUITE_CACHE"]
jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def _every_written_report_tells_the_truth(monkeypatch):
    """Every report a test writes (command line in-process, or ``jaxlimit.report.write_report``) is
    checked as it is written: every metric has its line in the glossary (docs/metrics.md), and no
    title, label or legend of a figure lies outside the figure or over another panel."""
    import jaxlimit.report
    from jaxlimit.glossary import explained
    from tests.helpers.reports import text_outside

    original = jaxlimit.report.write_report

    def checked(report, out):
        unexplained = sorted(k for k in report.metrics if not explained(k))
        assert not unexplained, f"report {report.experiment!r}: metrics without a glossary line: {unexplained}"
        problems = {name: text_outside(fig) for name, fig in report.figures.items()}
        assert not any(problems.values()), f"report {report.experiment!r}: {({k: v for k, v in problems.items() if v})}"
        return original(report, out)

    monkeypatch.setattr(jaxlimit.report, "write_report", checked)


@pytest.fixture(autouse=True)
def _restore_environment():
    """``jaxlimit.cli.main`` called in-process sets XLA_FLAGS and JAX_ENABLE_X64 as the
    command line does; put the environment back so later subprocesses see the CI's own."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: workers take whole files, so a file's module fixtures, such as a
    trained ensemble, are built once and its tests reuse the programs it compiled; a notebook runs
    in its own kernel and shares nothing, so each is a unit of its own and the notebooks spread
    over both workers instead of lining up on one.

    Done here rather than with ``xdist_group`` marks: pytest-xdist 3.8 marks a group by rewriting
    ``item._nodeid``, which pytest 9 no longer reads, so every test became a unit of its own and
    a file's module fixtures were built on both workers (and again whenever the worker had run
    another file's test in between)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path.endswith("test_notebooks.py") else path

    return ByFile(config, log)


def pytest_sessionfinish(session):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAXLIMIT_SUITE_CACHE"], ignore_errors=True)
