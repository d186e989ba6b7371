import pytest

from mmbench.registry import get_method_class, method_names, register_method, resolve_method_names
from mmbench.method import MMBenchMethod


def test_reference_methods_are_registered_through_entry_points():
    names = method_names()
    assert "fusion" in names and "mean" in names
    assert issubclass(get_method_class("fusion"), MMBenchMethod)


def test_unknown_method_suggests_close_names():
    with pytest.raises(KeyError, match="Did you mean fusion"):
        get_method_class("fusoin")


def test_all_excludes_ablation_variants_and_ablations_lists_the_declared_ones():
    from agents.omg_agent.variants import VARIANTS

    ablations = resolve_method_names("omg-agent-ablations")
    assert sorted(ablations) == sorted(f"omg-agent-{name}" for name in VARIANTS)  # declared once, registered from it
    assert not set(ablations) & set(resolve_method_names("all"))
    assert "omg-agent" in resolve_method_names("all")
    assert resolve_method_names("mean,fusion,mean") == ["mean", "fusion"]
    with pytest.raises(KeyError, match="declares no ablation variants"):
        resolve_method_names("fusion-ablations")


def _resolved(method, *overrides, profile="paper"):
    from mmbench.execute import resolved_method_config
    from mmbench.sweep import RunSpec, SweepOptions

    options = SweepOptions(datasets=("mosi-synth",), methods=(method,), overrides=overrides, profile=profile)
    return resolved_method_config(RunSpec("mosi-synth", method, "fixed", "all", 1111, "complete", "valid", options))


def test_a_variant_reads_its_base_config_then_its_switches():
    _, base, base_budget = _resolved("omg-agent", "omg-agent.batch_size=128", "omg-agent.n_candidates=1")
    _, k5, k5_budget = _resolved("omg-agent-k5", "omg-agent.batch_size=128", "omg-agent.n_candidates=1")
    assert k5["top_k"] == 5 and base["top_k"] == 10
    assert k5["batch_size"] == base["batch_size"] == 128 and k5["n_candidates"] == base["n_candidates"] == 1
    # everything but the switch is the base method's: the ablation delta is the switch alone
    assert {k: v for k, v in k5.items() if k != "top_k"} == {k: v for k, v in base.items() if k != "top_k"}
    assert k5_budget == base_budget
    _, only_k5, _ = _resolved("omg-agent-k5", "omg-agent-k5.batch_size=64")
    _, untouched, _ = _resolved("omg-agent-k20", "omg-agent-k5.batch_size=64")
    assert only_k5["batch_size"] == 64 and untouched["batch_size"] != 64


def test_no_ltask_changes_exactly_one_switch():
    _, base, _ = _resolved("omg-agent")
    _, ablated, _ = _resolved("omg-agent-no-ltask")
    assert {k for k in base if base[k] != ablated[k]} == {"executor_task_grad"}
    assert ablated["lambda_task"] == base["lambda_task"]
