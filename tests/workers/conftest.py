"""The worker tests build records with the store tests' builders (tests/store/conftest.py)."""

from tests.store.conftest import make  # noqa: F401 -- the fixture, shared
