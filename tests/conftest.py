"""Shared test fixtures. Data-dependent tests skip cleanly when ../shared/data (or CHATREC_TEST_DATA) is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.datasets import DataLocator, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHATREC_TEST_DATA", ROOT.parent / "shared" / "data"))
TEST_CACHE = Path(os.environ.get("CHATREC_TEST_CACHE", Path.home() / ".cache" / "chatrec-ci"))

_FILES = {
    "ml-100k": "ml-100k/u.data",
    "ml-1m": "ml-1m/movies.dat",
    "ml-latest-small": "ml-latest-small/ratings.csv",
    "goodbooks-10k": "goodbooks-10k/books.csv",
    "melu": "ml-1m-plots-melu/movies_extrainfos.dat",
    "tmdb": "tmdb/tmdb_5000_movies.csv",
}

pytest_plugins = ["tests.fixtures.chroma_server", "tests.fixtures.llama_server"]


def has_data(*names: str) -> bool:
    return all((SHARED_DATA / _FILES[n]).is_file() for n in names)


def requires_data(*names: str):
    """Decorator: skip unless the named datasets exist in ../shared/data."""
    return pytest.mark.skipif(not has_data(*names), reason=f"needs {', '.join(names)} in {SHARED_DATA}")


@pytest.fixture(scope="session")
def locator(tmp_path_factory) -> DataLocator:
    # Never download in tests: a missing file must fail loudly (or the test is skipped by requires_data).
    return DataLocator(data_dir=SHARED_DATA, cache_dir=tmp_path_factory.mktemp("cache"), allow_download=False,
                       progress=False)


@pytest.fixture(scope="session")
def ml100k(locator):
    if not has_data("ml-100k"):
        pytest.skip("ml-100k not available")
    return load_dataset("ml-100k", locator)


@pytest.fixture(scope="session")
def ml1m(locator):
    if not has_data("ml-1m"):
        pytest.skip("ml-1m not available")
    return load_dataset("ml-1m", locator)


@pytest.fixture(scope="session")
def ml_small(locator):
    if not has_data("ml-latest-small"):
        pytest.skip("ml-latest-small not available")
    return load_dataset("ml-latest-small", locator)


@pytest.fixture(scope="session")
def books(locator):
    if not has_data("goodbooks-10k"):
        pytest.skip("goodbooks-10k not available")
    return load_dataset("goodbooks-10k", locator)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CHATREC_REQUIRE_ALL=1 (set by .ci/run, where the data, llama.cpp server, chroma and Chromium are all
    installed) a skipped test is a failure: a skip there means a broken set-up, not a missing optional part."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CHATREC_REQUIRE_ALL") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything is required: {report.longrepr}"
