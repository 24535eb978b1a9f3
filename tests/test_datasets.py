"""Dataset loading on the real files in ../shared/data (skipped when absent) and on small broken fixtures."""
import gzip

import pytest

from retrieval.datasets import (DATASETS, CorruptDatasetError, DataLocator, DatasetNotFoundError, UnknownDatasetError,
                                load_dataset, text_coverage)
from tests.conftest import requires_data


@requires_data("ml-100k", "melu")
def test_ml100k(ml100k):
    assert ml100k.describe() == "ml-100k: 1682 items, 943 users, 100000 ratings"
    it = ml100k.catalog["ml100k:50"]
    assert it.title == "Star Wars" and it.year == 1977 and "Sci-Fi" in it.genres
    # latin-1 decoding: accented titles survive.
    assert any("é" in it.raw_title for it in ml100k.catalog)
    # MeLU joined by normalised title + year: the rate is logged and recorded.
    hit = sum(bool(i.plot) for i in ml100k.catalog) / len(ml100k.catalog)
    assert hit > 0.85 and any("title+year" in n for n in ml100k.notes)


@requires_data("ml-1m", "melu")
def test_ml1m_partial_is_labelled(ml1m):
    assert ml1m.partial and any("PARTIAL" in n for n in ml1m.notes)
    assert len(ml1m.ratings) == 487_650 and ml1m.ratings.n_users == 2999
    m = ml1m.catalog["ml1m:2571"]
    assert (m.title, m.year) == ("The Matrix", 1999) and "Keanu Reeves" in m.actors and m.directors
    assert m.genres == ("Action", "Sci-Fi", "Thriller")
    # First line of the ratings file stays first: protocols rely on file order for same-second ties.
    r = ml1m.ratings
    assert r.user_ids[r.user[0]] == "1" and ml1m.catalog.id_of(r.item[0]) == "ml1m:1193" and r.timestamp[0] == 978300760


@requires_data("ml-latest-small", "melu", "tmdb")
def test_latest_small_text_coverage(ml_small):
    cov = text_coverage(ml_small)
    # Joined by ids (links.tmdbId → TMDB, movieId ≤ 3952 → MeLU), not by title.
    assert cov["items"] == 9742 and 0.53 < cov["item_share"] < 0.60 and cov["rating_share"] > 0.85
    assert any("coverage" in n for n in ml_small.notes)
    inception = next(i for i in ml_small.catalog if i.title == "Inception")
    assert inception.year == 2010 and inception.plot and "dream" in inception.extra.get("keywords", "")
    assert ml_small.catalog["mls:1"].tags  # tags.csv joined


@requires_data("goodbooks-10k")
def test_goodbooks_catalog(books):
    assert len(books.catalog) == 10000 and len(books.ratings) == 0
    b = books.catalog["book:1"]
    assert b.domain == "book" and b.title == "The Hunger Games" and b.authors == ("Suzanne Collins",) and b.year == 2008


def test_unknown_dataset():
    with pytest.raises(UnknownDatasetError, match="ml-100k"):
        load_dataset("netflix")
    assert "ml-latest-small" in DATASETS


def test_missing_files_say_what_to_do(tmp_path):
    loc = DataLocator(data_dir=tmp_path, cache_dir=tmp_path / "cache", allow_download=False, progress=False)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("ml-100k", loc)
    msg = str(e.value)
    assert "u.item" in msg and "CHATREC_DATA_DIR" in msg and "--data-dir" in msg


def test_truncated_file_is_a_typed_error(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "movies.dat").write_bytes("1::Toy Story (1995)::Animation\n2::Jumanji (1995)::Adventure\n".encode("latin-1"))
    (d / "ratings.dat").write_text("1::1::5::978300760\n1::2\n")
    loc = DataLocator(data_dir=tmp_path, cache_dir=tmp_path / "c", allow_download=False, progress=False)
    with pytest.raises(CorruptDatasetError, match="line 2"):
        load_dataset("ml-1m", loc, with_text=False)


def test_small_fixture_parses_separators_latin1_and_gzip(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "movies.dat").write_bytes("1::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\r\n".encode("latin-1"))
    with gzip.open(d / "ratings_PARTIAL_users1-2999.dat.gz", "wt") as f:
        f.write("7::1::4::100\n")
    loc = DataLocator(data_dir=tmp_path, cache_dir=tmp_path / "c", allow_download=False, progress=False)
    ds = load_dataset("ml-1m", loc, with_text=False)
    it = ds.catalog["ml1m:1"]
    assert it.title == "La Cité des enfants perdus" and it.genres == ("Adventure", "Sci-Fi") and ds.partial
