"""``python -m derivations``: regenerate ``capopt/_formulas.py`` (``--check``: verify it)."""

from .codegen import main

raise SystemExit(main())
