"""Slow tier: the CLI end to end on the synthetic default and the real mosi-bclstm, and the regression check."""
import json
from pathlib import Path

import pytest

from mmbench import golden
from mmbench.cli import main
from mmbench.data.real import fetch

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    assert SHARED_DATA.is_dir(), f"the real data files are expected at {SHARED_DATA}"
    directory = tmp_path_factory.mktemp("data")
    fetch("mosi-bclstm", from_dir=SHARED_DATA, cache_dir=directory)
    return directory


def test_protocol_all_fills_the_store_and_the_leaderboard_prints_fixed_and_random(tmp_path, data_dir, capsys):
    results = tmp_path / "runs"
    code = main(["run", "--dataset", "mosi-synth", "--method", "fusion,mean", "--protocol", "all",
                 "--rates", "0.0,0.5", "--seeds", "1111,1112", "--limit", "200", "--max-epochs", "3",
                 "--results", str(results), "--data-dir", str(data_dir), "--no-leaderboard"])
    assert code == 0
    capsys.readouterr()
    assert main(["leaderboard", "--results", str(results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    protocols = {row["protocol"] for row in rows}
    assert protocols == {"fixed", "random", "frame"}
    fusion_fixed = [r for r in rows if r["method"] == "fusion" and r["protocol"] == "fixed" and r["metric"] != "mei"]
    assert {r["condition"] for r in fusion_fixed} == {"A", "V", "L", "VA", "LA", "LV", "LVA"}
    # the equity index: one value per model over its seven patterns
    assert [r["condition"] for r in rows if r["method"] == "fusion" and r["metric"] == "mei"] == ["all"]
    assert all(r["n_seeds"] == 2 and r["synthetic"] for r in fusion_fixed)
    random_rows = [r for r in rows if r["protocol"] == "random" and r["condition"] == "0.5"]
    assert random_rows and all(abs(r["achieved_rate"] - 0.5) < 0.01 for r in random_rows)
    assert main(["leaderboard", "--results", str(results), "--format", "md"]) == 0
    text = capsys.readouterr().out
    assert "fixed protocol" in text and "random protocol" in text and "SYNTHETIC" in text


def test_fusion_learns_on_real_mosi_bclstm(tmp_path, data_dir, capsys):
    results = tmp_path / "runs"
    assert main(["run", "--dataset", "mosi-bclstm", "--method", "fusion,mean", "--seeds", "1111",
                 "--max-epochs", "15", "--results", str(results), "--data-dir", str(data_dir),
                 "--no-leaderboard"]) == 0
    capsys.readouterr()
    main(["leaderboard", "--results", str(results), "--format", "json", "--metric", "mae,acc2_non0"])
    board = json.loads(capsys.readouterr().out)
    rows = {(r["method"], r["condition"], r["metric"]): r["mean"] for r in board}
    assert rows[("fusion", "LVA", "mae")] < rows[("mean", "LVA", "mae")] - 0.15
    assert rows[("fusion", "LVA", "acc2_non0")] > rows[("mean", "LVA", "acc2_non0")] + 0.1
    assert not any(r["synthetic"] for r in board)  # real data: no synthetic label


def test_golden_check_against_committed_spreads(tmp_path, data_dir):
    expected = json.loads(golden.EXPECTED_FILE.read_text())
    measured = golden.measure(golden.default_methods(), data_dir, tmp_path)
    problems = golden.compare(measured, expected)
    assert not problems, "\n".join(problems)
