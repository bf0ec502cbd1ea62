"""Tests of bayescale.core.io: atomic writes, file modes that follow the umask, save/load round
trip."""

import os
import stat
from pathlib import Path

import pytest
from fakes import make_fit, scattered
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.core.io import atomic_write, atomic_write_text, current_umask, save
from bayescale.errors import InputError
from bayescale.fits.store import load


@pytest.fixture
def umask():
    """Set a umask for the test and restore the previous one afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask):
        os.umask(mask)
        return mask

    yield set_mask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_mode_follows_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    written = atomic_write_text(tmp_path / "a.txt", "hi")
    assert mode(written) == 0o666 & ~mask
    # overwriting an existing file also gives the umask's mode, atomically
    os.chmod(written, 0o600)
    atomic_write_text(written, "again")
    assert mode(written) == 0o666 & ~mask and written.read_text() == "again"
    # reading the umask did not change it
    assert os.umask(mask) == mask


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = atomic_write_text(tmp_path / "a.txt", "old")

    def boom(p):
        Path(p).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_refuses_to_overwrite_an_input(tmp_path):
    src = tmp_path / "runs.csv"
    src.write_text("N,D,loss\n")
    with pytest.raises(InputError, match=r"refusing to write .*runs.csv: it is an input"):
        atomic_write(tmp_path / "runs.csv", lambda p: Path(p).write_text("x"), inputs=[src])
    assert src.read_text() == "N,D,loss\n"
    ok = atomic_write(tmp_path / "out.csv", lambda p: Path(p).write_text("x"), inputs=[src])
    assert ok.read_text() == "x"


def test_save_load_round_trip_with_mode(tmp_path, umask):
    umask(0o022)
    fit = make_fit(scattered(50))
    path = save(fit, tmp_path / "posterior.nc")
    assert mode(path) == 0o644
    back = load(path)
    assert back.attrs["bayescale_card"] == fit.attrs["bayescale_card"]
    assert float(back.posterior["E"].mean()) == pytest.approx(float(fit.posterior["E"].mean()))


def test_cli_out_files_are_0644_under_umask_022(tmp_path, umask, monkeypatch):
    """`fit --out` writes posterior.nc and summary.csv with mode 0644 under umask 022 (issue 11).

    The sampler is replaced by a fit-shaped DataTree: the writers, not the fit, are under test.
    """
    import bayescale.workflows.fit
    from bayescale import datasets

    monkeypatch.setattr(bayescale.workflows.fit, "fit", lambda runs, **kw: make_fit(scattered(100)))
    umask(0o022)
    csv = tmp_path / "runs.csv"
    datasets.simulate(random_seed=0).to_csv(csv, index=False)
    fit_out = tmp_path / "fit"
    result = CliRunner().invoke(app, ["fit", str(csv), "--out", str(fit_out)])
    assert result.exit_code == 0, result.stderr
    files = sorted(p for p in fit_out.iterdir() if p.is_file())
    assert [p.name for p in files] == ["posterior.nc", "summary.csv"]
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o644) for p in files}
    assert csv.read_text().startswith("N,D,C,loss")  # the input is untouched


def test_report_files_are_0644_under_umask_022(tmp_path, umask):
    """report.html/.md/.json and its figures follow the umask too (no sampling: a fake fit)."""
    from bayescale.workflows.report import write_report

    umask(0o022)
    write_report(make_fit(scattered(200)), tmp_path / "report", budgets=[1e22])
    files = [p for p in (tmp_path / "report").rglob("*") if p.is_file()]
    assert {"report.html", "report.md", "report.json"} <= {p.name for p in files}
    assert any(p.suffix == ".png" and p.parent.name == "figures" for p in files)
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o644) for p in files}
