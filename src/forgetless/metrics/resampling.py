"""The run's resampling seed: recorded with every resampled result, different from run to run.

Bootstraps draw their replicates from a seed derived from this one and the data they resample
(`paired_tests.data_seed`), so within a process the same items always give the same replicates (a
check and the final evaluation agree), while two runs draw independent replicates and a result never
leans on one fixed stream. Set `FORGETLESS_SEED` to an integer to repeat a run's draws exactly; each
result records the seed it used.
"""

from __future__ import annotations

import os
import secrets

_SEED: int | None = None


def run_seed() -> int:
    """This process's seed: `FORGETLESS_SEED` if set, else drawn once from the operating system."""
    global _SEED
    if _SEED is None:
        text = os.environ.get("FORGETLESS_SEED", "").strip()
        try:
            _SEED = int(text) if text else secrets.randbits(63)
        except ValueError as error:
            raise ValueError(f"FORGETLESS_SEED must be an integer, got {text!r}") from error
    return _SEED
