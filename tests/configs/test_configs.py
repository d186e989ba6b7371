"""Every YAML under configs/methods validates against its method's constructor."""
import pytest

from mmbench.config import check_values, configs_dir, load_method_config, split_budget, validate_config
from mmbench.registry import get_method_class, method_names

CONFIG_FILES = sorted((configs_dir() / "methods").glob("*.yaml"))


def test_every_registered_method_without_variant_suffix_has_a_config():
    names = {path.stem for path in CONFIG_FILES}
    missing = [n for n in method_names(include_variants=False, include_runtime=False) if n not in names]
    assert not missing, f"no configs/methods/<name>.yaml for {missing}"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
def test_config_keys_match_constructor(path):
    constructor, budget = split_budget(load_method_config(path.stem, path))
    method_class = get_method_class(path.stem)
    validate_config(method_class, constructor, source=str(path))
    check_values(method_class, {**constructor, **budget}, source=str(path))  # types and declared ranges
