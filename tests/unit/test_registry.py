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


def test_all_excludes_ablation_variants():
    @register_method("omg-agent-test-variant")
    class Variant(MMBenchMethod):
        pass

    assert "omg-agent-test-variant" in method_names()
    assert "omg-agent-test-variant" not in resolve_method_names("all")
    assert "omg-agent-test-variant" in resolve_method_names("omg-agent-ablations")
    assert resolve_method_names("mean,fusion,mean") == ["mean", "fusion"]
