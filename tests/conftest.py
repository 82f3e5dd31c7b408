"""Shared test settings: deterministic hypothesis runs and a high-precision reference recursion."""
import os

from hypothesis import settings

# Deterministic: the same examples on every run (no database, derandomized), no deadline
# because the first call into torch is slow.
settings.register_profile("ntk", derandomize=True, deadline=None, max_examples=40, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ntk"))
