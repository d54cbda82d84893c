"""Shared test configuration: hypothesis profiles, and no compilation notice in commands.

The ``ci`` profile (default) keeps the suite within CI's time budget and is derandomised, so a
run on a clean clone tries the same examples as the last one; ``thorough`` runs many more, from
a fresh random seed each time, to hunt for new failures: ``pytest --hypothesis-profile=thorough``.
A failure it finds becomes an ``@example`` on the test.
"""

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_compilation_notice(monkeypatch):
    """A command announces a first compilation on stderr, which depends on the state of
    numba's cache, not on the test: commands run in a test announce none
    (``tests/test_progress.py`` checks the notice itself)."""
    import capopt.cli

    monkeypatch.setattr(capopt.cli, "compilation_notice", lambda: None)
