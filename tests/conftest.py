"""Shared test configuration: hypothesis profiles.

The ``ci`` profile (default) keeps the suite within CI's time budget and is derandomised, so a
run on a clean clone tries the same examples as the last one; ``thorough`` runs many more, from
a fresh random seed each time, to hunt for new failures: ``pytest --hypothesis-profile=thorough``.
A failure it finds becomes an ``@example`` on the test.
"""

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile("ci")
