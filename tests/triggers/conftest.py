"""The UDP trigger tests use the display tests' world (tests/displays/conftest.py)."""

import pytest

from tests.displays.conftest import show, world  # noqa: F401 -- the fixtures, shared
from tests.displays.support import no_logged_failures  # noqa: F401


@pytest.fixture(autouse=True)
def _no_logged_failures(no_logged_failures):  # noqa: F811
    """Every test here fails if a traceback was logged while it ran."""
    return no_logged_failures
