"""Shared test configuration: hypothesis profiles.

The ``ci`` profile (default) keeps the suite within CI's time budget; ``thorough`` runs
many more examples: ``pytest --hypothesis-profile=thorough``.
"""

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile("ci")
