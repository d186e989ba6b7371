"""The generic suite (:mod:`tests.methods.suite`) over every shipped method."""
import pytest

from mmbench.registry import get_method_class, method_names
from tests.methods.suite import CHECKS

SHIPPED = method_names(include_runtime=False)  # the shipped methods, not test doubles


def _importable(name: str) -> bool:
    try:
        get_method_class(name)
    except Exception:  # noqa: BLE001 - reported by test_every_shipped_method_imports
        return False
    return True


# A method whose module fails to import fails the test below, not the collection of every other one.
METHODS = [name for name in SHIPPED if _importable(name)]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_method_imports(name):
    assert get_method_class(name).__name__


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", METHODS)
def test_generic_suite(name, check):
    check(name)
