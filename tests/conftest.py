"""Shared fixtures: a small synthetic VENUS, generated once per test session.

Generated data is cached in a throwaway folder (never the user's home cache), and the Hub
is offline for every test.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# Small enough to generate in ~2 s, large enough that every planted rule fires many times.
SMALL = dict(n_segments=24, seconds=90.0, seed=3)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Point the synthetic-data cache at a session temp folder."""
    old = os.environ.get("VENUS_MARS_CACHE")
    os.environ["VENUS_MARS_CACHE"] = str(tmp_path_factory.mktemp("venus-cache"))
    yield
    if old is None:
        os.environ.pop("VENUS_MARS_CACHE", None)
    else:
        os.environ["VENUS_MARS_CACHE"] = old


@pytest.fixture(scope="session")
def synth_and_truth(_isolated_cache):
    """(DatasetDict, SyntheticTruth) of the small synthetic VENUS."""
    from venus_analysis.synthetic import generate_venus

    return generate_venus(**SMALL, progress=False, return_truth=True)


@pytest.fixture(scope="session")
def synth(synth_and_truth):
    """The small synthetic VENUS as a DatasetDict (train/test)."""
    return synth_and_truth[0]


@pytest.fixture(scope="session")
def truth(synth_and_truth):
    """What the generator planted in the small synthetic VENUS."""
    return synth_and_truth[1]


# A dataset for the bias audit: six channels, and a seed where each planted channel (ranks
# 1-3) and two unplanted ones (ranks 0 and 4) have at least five videos (the audit tests
# groups with five or more). ~10 s to generate and measure on two cores.
AUDIT = dict(n_segments=120, seconds=30.0, seed=7, n_channels=6)


@pytest.fixture(scope="session")
def audit_synth(_isolated_cache):
    """(DatasetDict, SyntheticTruth, BehaviourTables) of the audit dataset (all splits measured)."""
    import datasets

    from venus_analysis.behaviour import measure_behaviour
    from venus_analysis.synthetic import SyntheticConfig, generate

    data, truth = generate(SyntheticConfig(**AUDIT), progress=False)
    tables = measure_behaviour(datasets.concatenate_datasets([data["train"], data["test"]]), workers=2)
    return data, truth, tables
