from importlib.metadata import EntryPoint, entry_points

import pytest
import torch

from mmbench import commands
from mmbench.cli import build_parser, main
from mmbench.sweep import SweepOptions, expand


def test_fixed_is_one_run_per_seed_and_random_one_per_rate():
    options = SweepOptions(datasets=("mosi-synth",), methods=("fusion", "mean"), protocols=("fixed", "random"),
                           rates=("0.0", "0.5"), seeds=(1111, 1112))
    plans = expand(options)
    fixed = [p for p in plans if p.protocol == "fixed"]
    random = [p for p in plans if p.protocol == "random"]
    assert len(fixed) == 2 * 2 and {p.condition for p in fixed} == {"all"}
    assert len(random) == 2 * 2 * 2 and {p.condition for p in random} == {"0.0", "0.5"}
    assert {p.train_setting for p in fixed} == {"complete"} and {p.train_setting for p in random} == {"same"}


def test_quick_profile_limits_the_sweep():
    options = SweepOptions(datasets=("mosi-synth",), methods=("fusion",), protocols=("fixed", "random"),
                           profile="quick").with_profile()
    assert options.seeds == (1111,) and options.protocols == ("fixed",)
    assert options.max_epochs <= 3 and options.limit == 512


def test_mosei_without_its_file_stops_before_training_naming_file_and_alternatives(tmp_path, capsys):
    code = main(["run", "--dataset", "mosei", "--method", "fusion", "--data-dir", str(tmp_path),
                 "--results", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1
    assert str(tmp_path / "MOSEI" / "Processed" / "aligned_50.pkl") in err
    assert "mosei-text" in err and "mosei-synth" in err and "MMSA" in err
    assert not (tmp_path / "runs" / "runs").exists()  # nothing was trained


def test_unsupported_protocol_and_unknown_method_are_clear(capsys):
    assert main(["run", "--dataset", "mosi-synth", "--method", "fusoin"]) == 1
    assert "Did you mean fusion" in capsys.readouterr().err


def test_data_inspect_of_a_bad_path_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"not a pickle")
    assert main(["data", "inspect", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1


def test_methods_lists_settings(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "fusion" in out and "complete, same, incomplete" in out


def test_export_writes_the_long_table_with_the_pinned_columns(tmp_path, capsys):
    import json

    from mmbench.results import MetricRow, ResultStore, RunRecord

    store = ResultStore(tmp_path)
    store.save(RunRecord(run_id="r1", config_hash="h", dataset="mosi-synth", data_sha256="d", method="fusion",
                         protocol="random", condition="0.5", train_setting="same", selection="valid", seed=1111,
                         mask_sha256="m", status="finished", started_at="t", synthetic=True, package_version="0",
                         git_commit=None, config={}, metrics=[MetricRow("test", "0.5", "mae", 0.9, 0.5, "ms")]))
    assert main(["export", "--results", str(tmp_path), "--format", "jsonl"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    pinned = {"run_id", "dataset", "method", "protocol", "condition", "achieved_rate", "train_setting", "selection",
              "seed", "split", "metric", "value", "mask_sha256", "data_sha256", "config_hash", "status", "config_id",
              "train_condition"}
    assert pinned <= set(row) and row["value"] == 0.9 and row["achieved_rate"] == 0.5
    out = tmp_path / "long.csv"
    assert main(["export", "--results", str(tmp_path), "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("run_id,dataset,method")


def test_a_real_dataset_not_fetched_prints_the_fetch_command(tmp_path, capsys):
    code = main(["run", "--dataset", "mosi-bclstm", "--method", "mean", "--data-dir", str(tmp_path),
                 "--results", str(tmp_path / "runs")])
    assert code == 1
    assert "mmbench data fetch mosi-bclstm" in capsys.readouterr().err


def test_masks_make_then_inspect(tmp_path, capsys):
    out = tmp_path / "masks"
    assert main(["masks", "make", "--dataset", "mosi-synth", "--protocol", "random", "--condition", "0.3",
                 "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    made = capsys.readouterr().out
    files = sorted(out.glob("mosi-synth/test-*.npz"))
    assert len(files) == 1 and "achieved rate 0.3" in made
    assert main(["masks", "inspect", str(files[0])]) == 0
    assert "random 0.3 seed 1111" in capsys.readouterr().out


def test_an_override_no_method_takes_is_refused_before_training(tmp_path, capsys):
    code = main(["run", "--dataset", "mosi-synth", "--method", "fusion,mean", "--set", "hiden_dim=3",
                 "--data-dir", str(tmp_path), "--results", str(tmp_path / "runs")])
    assert code == 1
    assert "no method of this sweep (fusion, mean) has the key 'hiden_dim'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["leaderboard"], ["export"], ["methods"], ["data"], ["data", "inspect"],
                                     ["data", "fetch"], ["masks"], ["masks", "make"], ["masks", "inspect"], ["plan"]])
def test_every_subcommand_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "mmbench " + command[0] in out.split("example", 1)[1]


def test_methods_reports_a_broken_entry_point_and_still_lists_the_others(monkeypatch, capsys):
    from mmbench import registry

    monkeypatch.setitem(registry._EXTRA, "broken-method", "no_such_package.module:Missing")
    assert main(["methods"]) == 1
    out = capsys.readouterr().out
    assert "broken-method" in out and "cannot be imported" in out and "fusion" in out


def test_plan_comes_from_the_agents_package_through_the_entry_point_group():
    args = build_parser(["plan", "--dataset", "mosi-synth"]).parse_args(["plan", "--dataset", "mosi-synth"])
    assert args.handler.__module__ == "agents.omg_agent.commands"


def test_plan_refuses_a_device_it_cannot_plan_on_before_loading_anything(capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["plan", "--dataset", "mosi-synth", "--device", "cuda"]) == 1
    assert "no CUDA device is visible" in capsys.readouterr().err
    assert main(["plan", "--dataset", "mosi-synth", "--device", "tpu"]) == 1
    assert "--device 'tpu'" in capsys.readouterr().err


def test_plan_hands_its_device_to_the_plan_book(monkeypatch, tmp_path):
    import agents.omg_agent.planner as planner
    import agents.omg_agent.precompute as precompute
    from agents.omg_agent.planner_registry import precision_tag

    made = []
    monkeypatch.setattr(planner.PlanBook, "__post_init__", lambda book: made.append(book.device))
    monkeypatch.setattr(precompute, "precompute_plans", lambda *args, **kwargs: {})
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    threads = torch.get_num_threads()
    monkeypatch.setenv("MMBENCH_THREADS", "1")
    torch.set_num_threads(2)  # as on a 2-core machine
    try:
        assert main(["plan", "--dataset", "mosi-synth", "--device", "cuda:1", "--data-dir", str(tmp_path)]) == 0
        assert main(["plan", "--dataset", "mosi-synth", "--data-dir", str(tmp_path)]) == 0
        assert torch.get_num_threads() == 1  # the thread budget, not every core
    finally:
        torch.set_num_threads(threads)
    assert [str(d) for d in made] == ["cuda:1", "cpu"]
    assert precision_tag(made[1]) is None  # the CPU plans in float32, under the keys it always had


def test_the_top_level_help_lists_built_in_and_contributed_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "leaderboard" in out and "OMG-Agent's plan cache" in out


def test_a_built_in_command_never_imports_the_contributed_ones(monkeypatch):
    monkeypatch.setattr(commands, "contributed_commands", lambda: pytest.fail("contributed commands were imported"))
    parser = build_parser(["masks", "inspect", "x.npz"])
    assert parser.parse_args(["masks", "inspect", "x.npz"]).masks_command == "inspect"


@pytest.fixture
def broken_command(monkeypatch):
    broken = EntryPoint("broken-cmd", "no_such_package.cli:register", commands.COMMAND_GROUP)
    monkeypatch.setattr(commands, "entry_points", lambda group: [*entry_points(group=group), broken])


def test_a_contributed_command_that_cannot_be_imported_reports_its_error(broken_command, capsys):
    assert main(["broken-cmd", "--dataset", "x"]) == 1
    err = capsys.readouterr().err
    assert "mmbench broken-cmd: error: cannot be imported: ModuleNotFoundError" in err and "no_such_package" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "plan" in capsys.readouterr().out  # the other contributed commands still work


def test_methods_lists_contributed_commands_and_the_error_of_a_broken_one(broken_command, capsys):
    assert main(["methods"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("plan ") and "agents.omg_agent.commands" in line for line in lines)
    assert any(line.startswith("broken-cmd ") and "cannot be imported" in line for line in lines)
    assert any(line.startswith("fusion ") for line in lines)


def _help(capsys, command: list[str]) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def _example_lines(help_text: str) -> list[str]:
    lines = (line.strip() for line in help_text.split("example", 1)[1].splitlines())
    return [line for line in lines if line.startswith("mmbench")]


@pytest.mark.parametrize("group,subcommands", [("data", ("inspect", "fetch")), ("masks", ("make", "inspect"))])
def test_a_group_help_shows_its_subcommands_examples_spelled_the_same(capsys, group, subcommands):
    group_examples = _example_lines(_help(capsys, [group]))
    for name in subcommands:
        examples = _example_lines(_help(capsys, [group, name]))
        assert examples and set(examples) <= set(group_examples), name
