"""Bad input is refused before anything trains, in one line, and never stored as a result (issue item 11)."""
import pytest

from mmbench.cli import main
from mmbench.results import ResultStore


def _run(tmp_path, *extra):
    return main(["run", "--dataset", "mosi-synth", "--method", "fusion", "--seeds", "1111", "--results",
                 str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--no-leaderboard", *extra])


def _stored_runs(tmp_path) -> int:
    db = tmp_path / "runs" / "mmbench.sqlite"
    return len(ResultStore(tmp_path / "runs").runs()) if db.exists() else 0


@pytest.mark.parametrize("extra, message", [
    (("--protocol", "random", "--rates", "0.25"), "'0.25' is not one of them"),
    (("--protocol", "random", "--rates", "1.5"), "'1.5' is not one of them"),
    (("--protocol", "random", "--rates", "abc"), "is not a number"),
    (("--limit", "0"), "--limit 0"),
    (("--limit", "2.5"), "--limit 2.5"),
    (("--max-epochs", "0"), "--max-epochs 0: must be at least 1"),
    (("--set", "lr=abc"), "lr='abc': expected a number"),
    (("--set", "batch_size=-1"), "batch_size=-1: must lie in [1, inf]"),
    (("--set", "fusion.dropout=2"), "dropout=2: must lie in [0, 1]"),
    (("--set", "hidden_dim=1.5"), "hidden_dim=1.5: expected an integer"),
    (("--set", "max_epochs=0"), "max_epochs=0: must lie in [1, inf]"),
    (("--patience", "3", "--set", "lr_patience=5", "--max-epochs", "20"), "must exceed lr_patience=5"),
])
def test_bad_values_are_refused_in_one_line_before_training(tmp_path, capsys, extra, message):
    assert _run(tmp_path, *extra) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert _stored_runs(tmp_path) == 0
    assert not (tmp_path / "runs" / "runs").exists()


def test_export_and_leaderboard_of_a_mistyped_store_path_create_nothing(tmp_path, capsys):
    for command in (["export", "--format", "csv"], ["leaderboard"]):
        assert main([*command, "--results", str(tmp_path / "typo")]) == 1
        assert "no results store in" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_parquet_without_pyarrow_is_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    ResultStore(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(["export", "--results", str(tmp_path), "--format", "parquet", "--out", str(tmp_path / "t.pq")]) == 1
    err = capsys.readouterr().err
    assert "pip install" in err and "Traceback" not in err


def test_a_read_only_store_can_be_read_and_refuses_writes_in_one_line(tmp_path, capsys):
    results = tmp_path / "runs"
    ResultStore(results)
    assert main(["leaderboard", "--results", str(results)]) == 0
    readonly = ResultStore(results, readonly=True)
    assert readonly.runs().empty
    # root ignores file modes, so a read-only store is simulated by a store path that cannot be created
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    assert _run(tmp_path, "--results", str(blocker / "runs")) == 1
    err = capsys.readouterr().err
    assert "results store" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
