"""Downloads (pooch) and the streamed ratings reader, against a real HTTP server on 127.0.0.1 serving tiny
synthetic archives: the download path, the publisher's checksum, a damaged member, an unreachable server."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import threading
import zipfile
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from retrieval import datasets as d
from retrieval.datasets import CorruptDatasetError, DataLocator, DatasetNotFoundError, load_dataset, read_ratings_csv
from retrieval.types import Catalog, Item

MOVIES = 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"Matrix, The (1999)",Action|Sci-Fi\n' \
         "7,Heat (1995),Crime\n"
RATINGS = "userId,movieId,rating,timestamp\n5,2,4.5,100\n5,1,3.0,101\n3,7,5.0,90\n5,7,1.0,102\n9,2,4.0,95\n"
LINKS = "movieId,imdbId,tmdbId\n1,0114709,862\n2,0133093,603\n7,0113277,949\n"
TAGS = "userId,movieId,tag,timestamp\n5,2,cyberpunk,1\n5,2,Cyberpunk,2\n3,2,philosophy,3\n"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real HTTP server on loopback serving tmp_path/www; yields (base URL, www dir, list of requested paths)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    requests: list[str] = []

    class Counting(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _zip(path: Path, files: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _ml32m_table(base: str, archive_hash: str) -> dict:
    return {k: replace(s, url=base + "ml-32m.zip", archive_hash=archive_hash)
            for k, s in d.SOURCES.items() if k.startswith("ml-32m/")}


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_big_dataset_downloads_once_with_checksum_and_loads(server, tmp_path, capsys):
    base, www, requests = server
    md5 = _zip(www / "ml-32m.zip", {"ml-32m/movies.csv": MOVIES, "ml-32m/ratings.csv": RATINGS,
                                    "ml-32m/links.csv": LINKS, "ml-32m/tags.csv": TAGS})
    cache = tmp_path / "cache"
    loc = DataLocator(cache_dir=cache, allow_download=True, progress=True, sources=_ml32m_table(base, md5))
    ds = load_dataset("ml-32m", loc)  # the text sources (MeLU, TMDB) have no entry here: optional, skipped

    assert requests == ["/ml-32m.zip"]  # every member came out of one download
    assert "ml-32m.zip" in capsys.readouterr().err  # the progress bar names the file
    assert [p.name for p in _files_under(cache)] == ["links.csv", "movies.csv", "ratings.csv", "tags.csv"]
    assert ds.describe() == "ml-32m: 3 items, 3 users, 5 ratings" and any("coverage" in n for n in ds.notes)
    assert ds.catalog["ml32m:2"].title == "The Matrix" and ds.catalog["ml32m:2"].tags == ("cyberpunk", "philosophy")
    r = ds.ratings
    assert r.user_ids == ("5", "3", "9")  # numbered in order of first appearance
    assert [ds.catalog.id_of(i) for i in r.item] == ["ml32m:2", "ml32m:1", "ml32m:7", "ml32m:7", "ml32m:2"]
    assert r.rating.dtype == np.float32 and r.rating.tolist() == [4.5, 3.0, 5.0, 1.0, 4.0]

    # A second load is local: no request reaches the server.
    load_dataset("ml-32m", DataLocator(cache_dir=cache, allow_download=False, progress=False), with_text=False)
    assert requests == ["/ml-32m.zip"]


def test_wrong_archive_checksum_saves_nothing(server, tmp_path):
    base, www, _ = server
    _zip(www / "ml-32m.zip", {"ml-32m/movies.csv": MOVIES, "ml-32m/ratings.csv": RATINGS})
    cache = tmp_path / "cache"
    loc = DataLocator(cache_dir=cache, progress=False, sources=_ml32m_table(base, "md5:" + "0" * 32))
    with pytest.raises(CorruptDatasetError, match="checksum mismatch") as e:
        loc.find("ml-32m/ratings.csv")
    assert "CHATREC_DATA_DIR" in str(e.value)
    assert _files_under(cache) == []


def test_damaged_member_is_rejected_and_not_saved(server, tmp_path):
    base, www, _ = server
    _zip(www / "ml-latest-small.zip", {"ml-latest-small/movies.csv": MOVIES})  # not the published content
    src = replace(d.SOURCES["ml-latest-small/movies.csv"], url=base + "ml-latest-small.zip")
    cache = tmp_path / "cache"
    loc = DataLocator(cache_dir=cache, progress=False, sources={"ml-latest-small/movies.csv": src})
    with pytest.raises(CorruptDatasetError, match="checksum mismatch for ml-latest-small/movies.csv"):
        loc.find("ml-latest-small/movies.csv")
    assert _files_under(cache) == []


def test_plain_file_download_checks_content_with_any_line_endings(server, tmp_path):
    base, www, _ = server
    payload = b"book_id,title\r\n1,X\r\n"
    (www / "books.csv").write_bytes(payload)
    sha = hashlib.sha256(payload.replace(b"\r\n", b"\n")).hexdigest()  # mirrors differ only in line endings
    src = replace(d.SOURCES["goodbooks-10k/books.csv"], url=base + "books.csv", sha256=sha)
    cache = tmp_path / "cache"
    p = DataLocator(cache_dir=cache, progress=False, sources={"goodbooks-10k/books.csv": src}).find(
        "goodbooks-10k/books.csv")
    assert p == cache / "data" / "goodbooks-10k" / "books.csv" and p.read_bytes() == payload
    assert _files_under(cache) == [p]  # the downloaded copy is gone once installed


def test_unreachable_server_says_what_to_do(tmp_path):
    with contextlib.closing(__import__("socket").socket()) as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    table = _ml32m_table(f"http://127.0.0.1:{port}/", None)
    cache = tmp_path / "cache"
    loc = DataLocator(cache_dir=cache, progress=False, sources=table, timeout_s=5)
    with pytest.raises(DatasetNotFoundError, match="could not download") as e:
        load_dataset("ml-32m", loc)
    assert "--data-dir" in str(e.value) and "CHATREC_DATA_DIR" in str(e.value)
    assert _files_under(cache) == []


def test_no_download_allowed_never_touches_the_network(tmp_path):
    loc = DataLocator(cache_dir=tmp_path, allow_download=False, progress=False)
    with pytest.raises(DatasetNotFoundError, match="ml-32m/movies.csv"):
        load_dataset("ml-32m", loc)


# --- the streamed ratings reader -------------------------------------------------------------------------------

def _catalog(*ids: int) -> Catalog:
    return Catalog([Item(id=f"ml32m:{i}", title=f"M{i}") for i in ids], "tiny")


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["ratings.csv", "ratings.csv.gz"])
def test_reader_chunks_agree_with_one_pass(tmp_path, name):
    rng = np.random.default_rng(0)
    n = 1000
    users = rng.integers(1, 60, n)
    items = rng.choice([1, 2, 7, 10, 300], n)
    lines = "".join(f"{u},{i},{r / 2:g},{1000 + k}\n" for k, (u, i, r) in
                    enumerate(zip(users, items, rng.integers(1, 11, n))))
    path = _write(tmp_path / name, "userId,movieId,rating,timestamp\r\n" + lines.replace("\n", "\r\n"))
    cat = _catalog(1, 2, 7, 10, 300)
    whole = read_ratings_csv(path, cat, "ml32m")
    chunked = read_ratings_csv(path, cat, "ml32m", chunk_rows=7)
    for f in ("user", "item", "rating", "timestamp"):
        assert np.array_equal(getattr(whole, f), getattr(chunked, f))
    assert whole.user_ids == chunked.user_ids == tuple(dict.fromkeys(str(u) for u in users))
    assert [whole.user_ids[u] for u in whole.user[:5]] == [str(u) for u in users[:5]]
    assert whole.timestamp.tolist() == list(range(1000, 1000 + n))


def test_reader_names_the_line_of_an_unknown_movie(tmp_path):
    path = _write(tmp_path / "ratings.csv", RATINGS + "4,99,3.5,7\n")
    with pytest.raises(CorruptDatasetError, match="line 7 rates movie 99"):
        read_ratings_csv(path, _catalog(1, 2, 7), "ml32m", chunk_rows=2)


@pytest.mark.parametrize("text", [
    "userId,movieId,rating,timestamp\n1,2,4.0\n",  # a field missing
    "userId,movieId,rating,timestamp\n1,2,four,5\n",  # not a number
    "user,item,rating\n1,2,4.0\n",  # another header
])
def test_reader_rejects_malformed_files(tmp_path, text):
    path = _write(tmp_path / "ratings.csv", text)
    with pytest.raises(CorruptDatasetError, match="not a MovieLens ratings.csv"):
        read_ratings_csv(path, _catalog(1, 2), "ml32m")


def test_reader_accepts_an_empty_ratings_file(tmp_path):
    r = read_ratings_csv(_write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n"), _catalog(1), "ml32m")
    assert len(r) == 0 and r.n_users == 0


def test_archive_members_are_streamed_not_read_whole(tmp_path):
    # _install copies in 1 MiB pieces and hashes CRLF-normalised content across piece boundaries.
    body = (b"x" * ((1 << 20) - 1) + b"\r\n") * 3
    dest = tmp_path / "out" / "f.csv"
    d._install(io.BytesIO(body), dest, hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest(), "test")
    assert dest.read_bytes() == body
