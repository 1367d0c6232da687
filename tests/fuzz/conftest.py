"""Hypothesis profiles for the fuzz targets (docs/RELIABILITY.md).

- `ci` (default): 200 examples per target, derandomized (the same inputs every run), no example
  database — a short, reproducible run inside `python -m pytest`.
- `long`: 20,000 examples per target, random, with the example database in .hypothesis/ so a
  failure found once is replayed first next time. `HYPOTHESIS_PROFILE=long` or `bench/fuzz_long.py`.
- `dev`: 50 examples, random — for editing a target.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                    HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=200, derandomize=True, database=None, print_blob=True, **COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("FUZZ_LONG_EXAMPLES", "20000")), print_blob=True,
                          **COMMON)
settings.register_profile("dev", max_examples=50, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
