import pytest

from mmbench.config import apply_overrides, resolve_config, validate_config
from mmbench.results.keys import key_hash as config_hash
from mmbench.reference import Fusion


def test_overrides_parse_yaml_values_and_dotted_keys():
    config = apply_overrides({"lr": 0.1, "net": {"depth": 2}}, ["lr=1e-3", "net.depth=4", "flag=true"])
    assert config == {"lr": 1e-3, "net": {"depth": 4}, "flag": True}


def test_bad_override_is_explained():
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["lr"])


def test_unknown_key_names_the_close_match():
    with pytest.raises(ValueError, match="did you mean 'hidden_dim'"):
        validate_config(Fusion, {"hiden_dim": 3})


def test_resolved_config_has_defaults_and_hash_is_canonical():
    resolved = resolve_config(Fusion, {"hidden_dim": 8})
    assert resolved["hidden_dim"] == 8 and resolved["lr"] == pytest.approx(1e-3)
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
