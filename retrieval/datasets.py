"""Datasets: MovieLens 100K / 1M / latest-small / 25M / 32M, MeLU plots, TMDB-5000 overviews, goodbooks-10k.

Resolution order for every source: an explicit data dir (`--data-dir` / `CHATREC_DATA_DIR`) → the user cache
(`~/.cache/chatrec/data`) → a download from the publisher into the cache with pooch (progress bar, the
publisher's md5 where one is published, sha256 of each file's content where we know it, atomic renames, so
nothing half-written is ever left behind). Offline and missing, a `DatasetNotFoundError` says what is missing,
where to put it and which variable to set. The 25M / 32M ratings are read in chunks into numeric arrays.

The MovieLens files may not be redistributed: the project never ships them; users download them from GroupLens.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Mapping

import numpy as np

from .titles import normalise_title, title_key
from .types import Catalog, Interactions, Item, Ratings

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "chatrec"


class DatasetError(Exception):
    """Base class for dataset problems; the message always says what to do."""


class UnknownDatasetError(DatasetError, ValueError):
    pass


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    pass


class CorruptDatasetError(DatasetError, ValueError):
    pass


@dataclass(frozen=True)
class Source:
    """One file of a dataset: where it lives locally and how to fetch it."""

    folder: str  # folder name under the data dir, e.g. "ml-1m"
    file: str  # file name inside that folder
    url: str  # download URL (a zip when `member` is set)
    member: str | None = None  # path inside the zip
    sha256: str | None = None  # of the content with CRLF → LF (mirrors differ only in line endings)
    alternatives: tuple[str, ...] = ()  # other local file names accepted (e.g. the partial ML-1M ratings)
    archive_hash: str | None = None  # the publisher's checksum of the downloaded file, in pooch's "md5:…" form


_GL = "https://files.grouplens.org/datasets/movielens/"
_GH = "https://raw.githubusercontent.com/"
_MELU = _GH + "recohut/coldstart-recsys/da72950ca514faee94f010a2cb6e99a373044ec1/data/MeLU/ml-1m/movies_extrainfos.dat"
_BOOKS = _GH + "zygmuntz/goodbooks-10k/6dd165b555a7b47b2dd36743a425776e641ff50c/"
_TMDB = (
    _GH + "Harsh4222/content-based-movie-recommendation-system/8d227a41095d1a26de9e678be6159e0da839e7f8/"
    "tmdb_5000_movies.csv.zip"
)
# GroupLens publishes an md5 beside each zip (ml-1m.zip.md5, ...).
_ML1M_MD5 = "md5:c4d9eecfca2ab87c1945afe126590906"
_BIG_MD5 = {"ml-25m": "md5:6b51fb2759a8657d3bfcbfc42b592ada", "ml-32m": "md5:d472be332d4daa821edc399621853b57"}
_BIG_FILES = ("movies.csv", "ratings.csv", "links.csv", "tags.csv")

SOURCES: dict[str, Source] = {
    "ml-100k/u.data": Source(
        "ml-100k", "u.data", _GL + "ml-100k.zip", "ml-100k/u.data",
        "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    ),
    "ml-100k/u.item": Source(
        "ml-100k", "u.item", _GL + "ml-100k.zip", "ml-100k/u.item",
        "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    ),
    "ml-1m/movies.dat": Source(
        "ml-1m", "movies.dat", _GL + "ml-1m.zip", "ml-1m/movies.dat",
        "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9", archive_hash=_ML1M_MD5,
    ),
    # The full file's own hash is not known offline; the zip's published md5 and the line count (1,000,209) are.
    "ml-1m/ratings.dat": Source(
        "ml-1m", "ratings.dat", _GL + "ml-1m.zip", "ml-1m/ratings.dat", None,
        alternatives=("ratings_PARTIAL_users1-2999.dat.gz",), archive_hash=_ML1M_MD5,
    ),
    "ml-latest-small/movies.csv": Source(
        "ml-latest-small", "movies.csv", _GL + "ml-latest-small.zip", "ml-latest-small/movies.csv",
        "c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc",
    ),
    "ml-latest-small/ratings.csv": Source(
        "ml-latest-small", "ratings.csv", _GL + "ml-latest-small.zip", "ml-latest-small/ratings.csv",
        "80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8",
    ),
    "ml-latest-small/links.csv": Source(
        "ml-latest-small", "links.csv", _GL + "ml-latest-small.zip", "ml-latest-small/links.csv",
        "028a4a1d17751ca9276e0e0718cfc22356350f224a996e1ec348c23274b9209d",
    ),
    "ml-latest-small/tags.csv": Source(
        "ml-latest-small", "tags.csv", _GL + "ml-latest-small.zip", "ml-latest-small/tags.csv",
        "68eec00a0820c2faa8863a6df7032f13d5899a4462bce9a97213905297ff3d34",
    ),
    **{
        f"{name}/{f}": Source(name, f, _GL + f"{name}.zip", f"{name}/{f}", archive_hash=md5)
        for name, md5 in _BIG_MD5.items() for f in _BIG_FILES
    },
    "ml-1m-plots-melu/movies_extrainfos.dat": Source(
        "ml-1m-plots-melu", "movies_extrainfos.dat", _MELU, None,
        "ff51b4d2110d83e73a4dba3179f48efc4680c8c968bdfe782806f376c6cdff29",
    ),
    "tmdb/tmdb_5000_movies.csv": Source(
        "tmdb", "tmdb_5000_movies.csv", _TMDB, "tmdb_5000_movies.csv",
        "1e0584a8dd374120e4ed4f2b81f0d2bd0eb95a554708e4a350d00ed5c46d2825",
    ),
    "goodbooks-10k/books.csv": Source(
        "goodbooks-10k", "books.csv", _BOOKS + "books.csv", None,
        "4d21d0e0433128657c752e3a3d0405ac0ec11675d6c70c64cb0abf4ab1acb76a",
    ),
}

DATASETS = ("ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "ml-32m", "goodbooks-10k")
ID_PREFIX = {"ml-100k": "ml100k", "ml-1m": "ml1m", "ml-latest-small": "mls", "ml-25m": "ml25m", "ml-32m": "ml32m",
             "goodbooks-10k": "book"}
# Prefixes whose numbers are MovieLens movie ids: the same number is the same film in each (ML-1M: ids ≤ 3952).
# ML-100K numbers its films its own way.
MOVIELENS_ID_PREFIXES = ("mls", "ml1m", "ml25m", "ml32m")
ML1M_FULL_LINES = 1_000_209


@dataclass(frozen=True)
class DataLocator:
    """Finds (and if allowed downloads) dataset files. One per app; no global state."""

    data_dir: Path | None = None
    cache_dir: Path = DEFAULT_CACHE
    allow_download: bool = True
    progress: bool = True
    sources: Mapping[str, Source] | None = None  # None: SOURCES (tests point a copy at a local server)
    timeout_s: float = 60.0  # per network read, not for the whole download

    @property
    def table(self) -> Mapping[str, Source]:
        return SOURCES if self.sources is None else self.sources

    def find(self, key: str) -> Path:
        """Local path of a source file, downloading it into the cache when allowed."""
        src = self.table.get(key)
        if src is None:  # a locator given its own table (a mirror, a test server) may leave sources out
            raise DatasetNotFoundError(f"no download source is configured for {key}")
        names = (src.file, *src.alternatives)
        roots = [r for r in (self.data_dir, self.cache_dir / "data") if r is not None]
        for root in roots:
            for name in names:
                p = Path(root) / src.folder / name
                if p.is_file():
                    return p
        if not self.allow_download:
            where = " or ".join(str(Path(r) / src.folder / src.file) for r in roots)
            raise DatasetNotFoundError(
                f"{key} not found (looked in {where}). Put the file there, point --data-dir / CHATREC_DATA_DIR "
                f"at a folder that holds {src.folder}/{src.file}, or allow downloads (from {src.url})."
            )
        return self._download(src)

    def optional(self, key: str) -> Path | None:
        """Like `find`, but a missing or unreachable source returns None and is logged (the app runs without it)."""
        try:
            return self.find(key)
        except DatasetError as e:
            log.warning("optional source unavailable, continuing without it: %s", e)
            return None

    def _download(self, src: Source) -> Path:
        """Fetch `src.url` with pooch (progress bar, the publisher's checksum, a temporary file until it matches),
        then move the file into the cache. An archive is opened once: every member that a known source names is
        extracted (streamed, each checked and renamed into place atomically) and the archive is then deleted, so
        a dataset downloads once and ml-32m's 239 MB zip does not stay beside its extracted files."""
        blob = self._fetch(src)
        try:
            if src.member is None:
                with open(blob, "rb") as stream:
                    _install(stream, self._dest(src), src.sha256, src.url)
                return self._dest(src)
            return self._extract(blob, src)
        finally:
            blob.unlink(missing_ok=True)

    def _dest(self, src: Source) -> Path:
        return self.cache_dir / "data" / src.folder / src.file

    def _fetch(self, src: Source) -> Path:
        import pooch
        import requests

        name = src.url.rsplit("/", 1)[-1] or "download"
        # pooch logs the URL and draws a tqdm bar sized from Content-Length.
        downloader = pooch.HTTPDownloader(progressbar=self.progress, timeout=self.timeout_s,
                                          headers={"User-Agent": "chatrec/0.1"})
        try:
            return Path(pooch.retrieve(src.url, known_hash=src.archive_hash, fname=name,
                                       path=self.cache_dir / "downloads", downloader=downloader))
        except ValueError as e:  # pooch's checksum mismatch: its temporary file is already deleted
            raise CorruptDatasetError(
                f"checksum mismatch for {src.url} ({e}); nothing was saved. The publisher may have changed the "
                f"file or the download was damaged: try again, or download it by hand and put {src.folder}/"
                f"{src.file} under a folder passed as --data-dir / CHATREC_DATA_DIR."
            ) from e
        except (requests.RequestException, OSError) as e:
            raise DatasetNotFoundError(
                f"could not download {src.url} ({type(e).__name__}). Offline? Download it yourself and put "
                f"{src.folder}/{src.file} under a folder passed as --data-dir or CHATREC_DATA_DIR "
                f"(or under {self.cache_dir / 'data'})."
            ) from e

    def _extract(self, blob: Path, src: Source) -> Path:
        siblings = [s for s in self.table.values() if s.url == src.url and s.member and s.member != src.member]
        try:
            with zipfile.ZipFile(blob) as zf:
                with zf.open(src.member) as stream:
                    _install(stream, self._dest(src), src.sha256, f"{src.url}:{src.member}")
                for s in siblings:
                    if self._dest(s).is_file():
                        continue
                    try:
                        with zf.open(s.member) as stream:
                            _install(stream, self._dest(s), s.sha256, f"{s.url}:{s.member}")
                    except (KeyError, CorruptDatasetError) as e:  # not the file asked for: it is fetched when needed
                        log.warning("not extracting %s from %s: %s", s.member, src.url, e)
        except (zipfile.BadZipFile, KeyError) as e:
            raise CorruptDatasetError(f"{src.url} is not the expected archive ({e}); try again later") from e
        log.info("downloaded %s → %s", src.url, self._dest(src))
        return self._dest(src)


def _install(stream: BinaryIO, dest: Path, sha256: str | None, what: str) -> None:
    """Copy `stream` to `dest` through a temporary file renamed into place only when the content checks out
    (sha256 of the CRLF → LF content, when known): a reader never sees a half-written or wrong file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    carry = b""  # a trailing "\r" waits for the next chunk: it may be half of a "\r\n"
    tmp = Path(tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.part-")[1])
    try:
        with open(tmp, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                out.write(chunk)
                if sha256:
                    data = carry + chunk
                    carry = b"\r" if data.endswith(b"\r") else b""
                    h.update(data[: len(data) - len(carry)].replace(b"\r\n", b"\n"))
        h.update(carry)
        if sha256 and h.hexdigest() != sha256:
            raise CorruptDatasetError(
                f"checksum mismatch for {dest.parent.name}/{dest.name} from {what}; the file was not saved. "
                "The publisher may have changed it: download it by hand and pass --data-dir."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _read_text(path: Path, encoding: str) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return raw.decode(encoding).replace("\r\n", "\n")


def _rows(path: Path, sep: str, encoding: str, min_fields: int) -> list[list[str]]:
    out = []
    for n, line in enumerate(_read_text(path, encoding).split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) < min_fields:
            raise CorruptDatasetError(
                f"{path}: line {n} has {len(parts)} fields, expected {min_fields} ({line[:80]!r}); "
                "the file is truncated or corrupt: delete it and download it again"
            )
        out.append(parts)
    return out


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = _read_text(path, "utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@dataclass(frozen=True)
class Dataset:
    """A catalog plus its explicit ratings (empty for catalog-only sources such as goodbooks-10k)."""

    name: str
    catalog: Catalog
    ratings: Ratings
    partial: bool = False
    notes: tuple[str, ...] = ()

    def interactions(self, *, min_rating: float = 0.0, confidence: str = "linear", alpha: float = 1.0) -> Interactions:
        return Interactions.from_ratings(
            self.ratings, len(self.catalog), min_rating=min_rating, confidence=confidence, alpha=alpha
        )

    def describe(self) -> str:
        part = " (PARTIAL ratings)" if self.partial else ""
        return f"{self.name}{part}: {len(self.catalog)} items, {self.ratings.n_users} users, {len(self.ratings)} ratings"


def _ratings_from_columns(users: list[str], items: list[int], rating: list[float], ts: list[int]) -> Ratings:
    uniq: dict[str, int] = {}
    urows = np.fromiter((uniq.setdefault(u, len(uniq)) for u in users), dtype=np.int64, count=len(users))
    return Ratings(
        user=urows,
        item=np.asarray(items, dtype=np.int64),
        rating=np.asarray(rating, dtype=np.float32),
        timestamp=np.asarray(ts, dtype=np.int64),
        user_ids=tuple(uniq),
    )


def _movie(prefix: str, mid: str, raw_title: str, genres: Iterable[str], **kw) -> Item:
    title, year, alts = normalise_title(raw_title)
    extra = {"alt_titles": " | ".join(alts)} if alts else {}
    extra.update(kw.pop("extra", {}))
    return Item(
        id=f"{prefix}:{mid}", title=title, year=year, genres=tuple(g for g in genres if g and g != "(no genres listed)"),
        domain="movie", raw_title=raw_title, extra=extra, **kw,
    )


def _index_ratings(catalog: Catalog, prefix: str, rows: Iterable[tuple[str, str, str, str]], path: Path) -> Ratings:
    users, items, rs, ts = [], [], [], []
    for u, i, r, t in rows:
        try:
            items.append(catalog.row(f"{prefix}:{i}"))
            rs.append(float(r))
            ts.append(int(t))
        except (ValueError, KeyError) as e:
            raise CorruptDatasetError(f"{path}: bad rating row {(u, i, r, t)} ({e}); delete the file and reload") from e
        users.append(u)
    return _ratings_from_columns(users, items, rs, ts)


# --- MeLU / TMDB item text -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MovieText:
    plot: str = ""
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    tagline: str = ""
    title: str = ""
    year: int | None = None
    countries: tuple[str, ...] = ()
    original_language: str = ""
    runtime: int | None = None  # minutes


def _split_people(s: str) -> tuple[str, ...]:
    out = []
    for p in s.split(","):
        p = p.split("(")[0].strip()  # "Joss Whedon (screenplay by)" → "Joss Whedon"
        if p and p != "N/A" and p not in out:
            out.append(p)
    return tuple(out)


def load_melu(path: Path) -> dict[str, MovieText]:
    """MeLU `movies_extrainfos.dat`, keyed by the MovieLens (ML-1M) movie id."""
    out = {}
    for f in _rows(path, "::", "utf-8", 10):
        plot = f[9].strip()
        year = int(f[2]) if f[2].strip().isdigit() else None
        out[f[0]] = MovieText(
            plot="" if plot == "N/A" else plot, directors=_split_people(f[6]), writers=_split_people(f[7]),
            actors=_split_people(f[8]), title=f[1].strip(), year=year,
        )
    return out


def load_tmdb(path: Path) -> dict[str, MovieText]:
    """TMDB-5000 movies, keyed by TMDb id (as a string)."""
    out = {}
    for r in _csv_rows(path):
        def names(field: str) -> tuple[str, ...]:
            try:
                return tuple(d["name"] for d in json.loads(r.get(field) or "[]"))
            except (json.JSONDecodeError, TypeError, KeyError):
                return ()
        date = r.get("release_date") or ""
        try:
            countries = tuple(d["iso_3166_1"] for d in json.loads(r.get("production_countries") or "[]"))
        except (json.JSONDecodeError, TypeError, KeyError):
            countries = ()
        out[r["id"]] = MovieText(
            plot=(r.get("overview") or "").strip(), keywords=names("keywords"), tagline=(r.get("tagline") or "").strip(),
            title=r.get("title") or "", year=int(date[:4]) if date[:4].isdigit() else None, countries=countries,
            original_language=(r.get("original_language") or "").strip(), runtime=_minutes(r.get("runtime")),
        )
    return out


def _minutes(raw: str | None) -> int | None:
    try:
        m = int(float(raw or ""))
    except ValueError:
        return None
    return m if m > 0 else None


def _with_text(it: Item, t: MovieText | None) -> Item:
    if t is None:
        return it
    extra = dict(it.extra)
    if t.keywords:
        extra["keywords"] = ", ".join(t.keywords)
    if t.tagline:
        extra["tagline"] = t.tagline
    return replace(
        it, plot=it.plot or t.plot, directors=it.directors or t.directors, writers=it.writers or t.writers,
        actors=it.actors or t.actors, extra=extra, countries=it.countries or t.countries,
        original_language=it.original_language or t.original_language, runtime=it.runtime or t.runtime,
    )


# --- loaders -----------------------------------------------------------------------------------------------------

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


def load_ml100k(loc: DataLocator, with_text: bool = True) -> Dataset:
    items_path = loc.find("ml-100k/u.item")
    items = []
    for f in _rows(items_path, "|", "latin-1", 24):
        flags = f[5:24]
        genres = [g for g, on in zip(ML100K_GENRES, flags) if on.strip() == "1" and g != "unknown"]
        items.append(_movie("ml100k", f[0], f[1], genres, extra={"imdb_url": f[4]}))
    notes = []
    if with_text:
        melu_path = loc.optional("ml-1m-plots-melu/movies_extrainfos.dat")
        if melu_path:
            # ML-100K ids are its own: join MeLU (ML-1M ids) by normalised title + year.
            by_key = {}
            for t in load_melu(melu_path).values():
                by_key.setdefault((title_key(normalise_title(t.title)[0]), t.year), t)
            joined = [_with_text(it, by_key.get((title_key(it.title), it.year))) for it in items]
            hit = sum(1 for it in joined if it.plot)
            notes.append(f"MeLU plots joined by title+year: {hit}/{len(items)} items ({hit / len(items):.1%})")
            log.info("ml-100k: %s", notes[-1])
            items = joined
    catalog = Catalog(with_display_facts(items, loc, links=None), "ml-100k")
    path = loc.find("ml-100k/u.data")
    rows = ((f[0], f[1], f[2], f[3]) for f in _rows(path, "\t", "latin-1", 4))
    ratings = _index_ratings(catalog, "ml100k", rows, path)
    return Dataset("ml-100k", with_rating_stats(catalog, ratings), ratings, notes=tuple(notes))


def load_ml1m(loc: DataLocator, with_text: bool = True) -> Dataset:
    movies_path = loc.find("ml-1m/movies.dat")
    items = [_movie("ml1m", f[0], f[1], f[2].split("|")) for f in _rows(movies_path, "::", "latin-1", 3)]
    notes = []
    if with_text:
        melu_path = loc.optional("ml-1m-plots-melu/movies_extrainfos.dat")
        if melu_path:
            melu = load_melu(melu_path)
            items = with_alias_origins([_with_text(it, melu.get(it.id.split(":", 1)[1])) for it in items])
            hit = sum(1 for it in items if it.plot or it.directors)
            notes.append(f"MeLU plots joined by id: {hit}/{len(items)} items ({hit / len(items):.1%})")
            log.info("ml-1m: %s", notes[-1])
    # MovieLens ids are the same in every release: latest-small's links.csv gives ML-1M's TMDB / IMDb ids.
    catalog = Catalog(with_display_facts(items, loc, links="ml-latest-small/links.csv"), "ml-1m")
    path = loc.find("ml-1m/ratings.dat")
    fields = _rows(path, "::", "latin-1", 4)
    partial = len(fields) != ML1M_FULL_LINES
    if partial:
        notes.append(
            f"PARTIAL ML-1M ratings: {len(fields):,} of {ML1M_FULL_LINES:,} lines ({path.name}); "
            "numbers on it are not comparable with published full-ML-1M results"
        )
        log.warning("ml-1m: %s", notes[-1])
    rows = ((f[0], f[1], f[2], f[3]) for f in fields)
    ratings = _index_ratings(catalog, "ml1m", rows, path)
    return Dataset("ml-1m", with_rating_stats(catalog, ratings), ratings, partial=partial, notes=tuple(notes))


def load_ml_latest_small(loc: DataLocator, with_text: bool = True) -> Dataset:
    return _load_movielens_csv("ml-latest-small", loc, with_text)


def load_ml25m(loc: DataLocator, with_text: bool = True) -> Dataset:
    return _load_movielens_csv("ml-25m", loc, with_text)


def load_ml32m(loc: DataLocator, with_text: bool = True) -> Dataset:
    return _load_movielens_csv("ml-32m", loc, with_text)


def _load_movielens_csv(name: str, loc: DataLocator, with_text: bool) -> Dataset:
    """The CSV MovieLens sets (latest-small, 25M, 32M): movies.csv, ratings.csv, tags.csv, links.csv."""
    prefix = ID_PREFIX[name]
    movies = _csv_rows(loc.find(f"{name}/movies.csv"))
    tags_path = loc.optional(f"{name}/tags.csv")
    tags = _first_tags(tags_path) if tags_path else {}
    items = [
        _movie(prefix, r["movieId"], r["title"], r["genres"].split("|"), tags=tuple(tags.get(r["movieId"], ())))
        for r in movies
    ]
    notes = []
    if with_text:
        items, note = _join_movielens_text(loc, items, name)
        if note:
            notes.append(note)
    catalog = Catalog(with_display_facts(items, loc, links=f"{name}/links.csv"), name)
    ratings = read_ratings_csv(loc.find(f"{name}/ratings.csv"), catalog, prefix, progress=loc.progress)
    ds = Dataset(name, with_rating_stats(catalog, ratings), ratings, notes=tuple(notes))
    if with_text:
        cov = text_coverage(ds)
        msg = (
            f"item text coverage: {cov['items_with_text']}/{cov['items']} items ({cov['item_share']:.1%}), "
            f"carrying {cov['rating_share']:.1%} of ratings"
        )
        log.info("%s: %s", name, msg)
        ds = Dataset(ds.name, ds.catalog, ds.ratings, ds.partial, ds.notes + (msg,))
    return ds


_MAX_TAGS = 12


def _first_tags(path: Path) -> dict[str, list[str]]:
    """The first distinct tags (case-insensitively) of each movie, streamed: ml-32m's tags.csv has 2M rows."""
    tags: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    with _open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        for r in csv.DictReader(text):
            t = (r.get("tag") or "").strip()
            lst = tags.setdefault(r["movieId"], [])
            low = seen.setdefault(r["movieId"], set())
            if t and len(lst) < _MAX_TAGS and t.lower() not in low:
                lst.append(t)
                low.add(t.lower())
    return tags


_RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
_CHUNK_ROWS = 2_000_000  # parsed numbers per chunk ≈ 56 MB, whatever the file's size


def read_ratings_csv(path: Path, catalog: Catalog, prefix: str, *, chunk_rows: int = _CHUNK_ROWS,
                     progress: bool = False) -> Ratings:
    """A MovieLens ratings.csv (header `userId,movieId,rating,timestamp`) as Ratings over `catalog`.

    Parsed in chunks of `chunk_rows` lines by pandas' C reader straight into numeric arrays, so no row ever
    becomes Python objects: ml-32m's 32M ratings take ≈ 0.9 GB as arrays (user, item, timestamp int64; rating
    float32). On 5M rows it is 13x faster than the csv-module path with 6x less peak memory (0.4 vs 2.5 GiB;
    benchmarks/als_scale.py). Users are numbered in order of first appearance, as the other loaders number
    them; a movie id missing from the catalog is a CorruptDatasetError.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    lut = _movie_rows(catalog, prefix)
    users, items, ratings, stamps = [], [], [], []
    big = path.stat().st_size > 50_000_000
    dtypes = {"userId": np.int64, "movieId": np.int64, "rating": np.float32, "timestamp": np.int64}
    with _open_binary(path) as f, tqdm(desc=f"reading {path.name}", unit=" ratings", unit_scale=True,
                                       disable=not (progress and big)) as bar:
        try:
            for chunk in pd.read_csv(f, usecols=list(_RATING_COLUMNS), dtype=dtypes, chunksize=chunk_rows,
                                     engine="c"):
                mid = chunk["movieId"].to_numpy()
                rows = lut[np.clip(mid, 0, len(lut) - 1)]
                bad = np.flatnonzero((mid < 0) | (mid >= len(lut)) | (rows < 0))
                if len(bad):
                    line = sum(map(len, users)) + int(bad[0]) + 2  # + header, 1-based
                    raise CorruptDatasetError(
                        f"{path}: line {line} rates movie {int(mid[bad[0]])}, which movies.csv does not list; "
                        "the files are from different releases or corrupt: delete them and download again"
                    )
                users.append(chunk["userId"].to_numpy())
                items.append(rows)
                ratings.append(chunk["rating"].to_numpy())
                stamps.append(chunk["timestamp"].to_numpy())
                bar.update(len(chunk))
        except CorruptDatasetError:
            raise
        except (ValueError, pd.errors.ParserError) as e:  # a short line, a word where a number belongs, a header
            raise CorruptDatasetError(
                f"{path}: not a MovieLens ratings.csv ({str(e)[:200]}); expected the header "
                f"{','.join(_RATING_COLUMNS)} and four numbers per line. Delete the file and download it again."
            ) from e
    raw = np.concatenate(users) if users else np.zeros(0, np.int64)
    uniq, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    del raw, users
    order = np.argsort(first, kind="stable")
    number = np.empty(len(uniq), dtype=np.int64)
    number[order] = np.arange(len(uniq))
    return Ratings(
        user=number[inverse.reshape(-1)],
        item=np.concatenate(items) if items else np.zeros(0, np.int64),
        rating=np.concatenate(ratings) if ratings else np.zeros(0, np.float32),
        timestamp=np.concatenate(stamps) if stamps else np.zeros(0, np.int64),
        user_ids=tuple(str(u) for u in uniq[order].tolist()),
    )


def _movie_rows(catalog: Catalog, prefix: str) -> np.ndarray:
    """Lookup array: MovieLens movie id → catalog row (-1 where the catalog has no such movie)."""
    head = f"{prefix}:"
    ids = [(int(it.id[len(head):]), row) for row, it in enumerate(catalog) if it.id.startswith(head)]
    lut = np.full(max((m for m, _ in ids), default=0) + 1, -1, dtype=np.int64)
    for m, row in ids:
        lut[m] = row
    return lut


def _open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _join_movielens_text(loc: DataLocator, items: list[Item], name: str) -> tuple[list[Item], str]:
    """Join by ids, not titles: movieId ≤ 3952 → MeLU (ML-1M ids); links.tmdbId → TMDB-5000."""
    melu_path = loc.optional("ml-1m-plots-melu/movies_extrainfos.dat")
    melu = load_melu(melu_path) if melu_path else {}
    tmdb_path = loc.optional("tmdb/tmdb_5000_movies.csv")
    links_path = loc.optional(f"{name}/links.csv") if tmdb_path else None
    tmdb = load_tmdb(tmdb_path) if tmdb_path else {}
    tmdb_of = {}
    if links_path:
        tmdb_of = {r["movieId"]: (r.get("tmdbId") or "").strip() for r in _csv_rows(links_path)}
    out, n_melu, n_tmdb = [], 0, 0
    for it in items:
        mid = it.id.split(":", 1)[1]
        t_melu = melu.get(mid) if int(mid) <= 3952 else None
        t_tmdb = tmdb.get(tmdb_of.get(mid, ""))
        n_melu += t_melu is not None
        n_tmdb += t_tmdb is not None
        out.append(_with_text(_with_text(it, t_melu), t_tmdb))
    out = with_alias_origins(out)
    return out, f"text sources: MeLU {n_melu} items, TMDB {n_tmdb} items"


def with_alias_origins(items: list[Item]) -> list[Item]:
    """Country of origin from the packaged Korean alias table for MovieLens films the other sources leave blank
    (TMDB-5000 covers few Korean films)."""
    from .lang import COUNTRY_LANGUAGE
    from .title_resolver import DEFAULT_ALIASES, load_aliases

    origin = {str(e.movielens_id): e.origin for e in load_aliases(DEFAULT_ALIASES) if e.origin and e.movielens_id}
    out = []
    for it in items:
        o = origin.get(it.id.split(":", 1)[1]) if it.id.split(":", 1)[0] in MOVIELENS_ID_PREFIXES else None
        if o and not it.countries:
            it = replace(it, countries=(o,), original_language=it.original_language or COUNTRY_LANGUAGE.get(o, ""))
        out.append(it)
    return out


def with_display_facts(items: list[Item], loc: DataLocator, links: str | None) -> list[Item]:
    """What a card shows besides the title: TMDB / IMDb ids from MovieLens `links` (offline), the Korean title
    from the packaged alias table, and whatever `chatrec-index enrich` has cached (retrieval/enrich.py) — Korean
    title and overview, poster, runtime, age ratings. Nothing here touches the network."""
    from . import enrich
    from .title_resolver import DEFAULT_ALIASES, load_aliases

    site_ids: dict[str, tuple[str, str]] = {}
    links_path = loc.optional(links) if links and links in loc.table else None
    if links_path:
        for r in _csv_rows(links_path):
            imdb = (r.get("imdbId") or "").strip()
            site_ids[r["movieId"]] = ((r.get("tmdbId") or "").strip(), f"tt{imdb.zfill(7)}" if imdb else "")
    by_id: dict[str, str] = {}
    by_title: dict[tuple[str, int | None], str] = {}
    for e in load_aliases(DEFAULT_ALIASES):
        if e.ko and e.movielens_id is not None:
            by_id[str(e.movielens_id)] = e.ko[0]
            by_title[(title_key(e.title), e.year)] = e.ko[0]
    cache = enrich.read_cache(enrich.cache_root(loc.data_dir, loc.cache_dir))
    out = []
    for it in items:
        prefix, mid = it.id.split(":", 1)
        ml = prefix in MOVIELENS_ID_PREFIXES
        tmdb_id, imdb_id = site_ids.get(mid, ("", "")) if ml else ("", "")
        key = title_key(it.title)
        # ML-100K has its own ids, and its years drift by one against latest-small: title + year ± 1.
        ko = (by_id.get(mid) if ml else None) or next(
            (by_title[k] for dy in (0, -1, 1) if (k := (key, it.year and it.year + dy)) in by_title), None)
        it = replace(it, tmdb_id=it.tmdb_id or tmdb_id, imdb_id=it.imdb_id or imdb_id, title_ko=it.title_ko or ko or "")
        out.append(enrich.apply(it, cache))
    return out


def with_rating_stats(catalog: Catalog, ratings: Ratings) -> Catalog:
    """The catalog with each item's MovieLens mean rating (3 decimals) and ratings count filled in."""
    n = len(catalog)
    sums = np.bincount(ratings.item, weights=ratings.rating, minlength=n)
    counts = np.bincount(ratings.item, minlength=n)
    items = [replace(it, avg_rating=it.avg_rating if it.avg_rating is not None else round(float(sums[r] / counts[r]), 3),
                     rating_count=int(counts[r])) if counts[r] > 0 else it
             for r, it in enumerate(catalog)]
    return Catalog(items, catalog.name)


def load_goodbooks(loc: DataLocator, with_text: bool = True) -> Dataset:
    """goodbooks-10k catalog (no per-user ratings offline: the catalog is the second domain)."""
    items = []
    for r in _csv_rows(loc.find("goodbooks-10k/books.csv")):
        year_s = (r.get("original_publication_year") or "").strip()
        try:
            year = int(float(year_s)) if year_s else None
        except ValueError:
            year = None
        title = (r.get("original_title") or "").strip() or r["title"].strip()
        series = r["title"].strip() if r["title"].strip() != title else ""
        try:
            avg = float(r.get("average_rating") or "nan")
        except ValueError:
            avg = None
        items.append(
            Item(
                id=f"book:{r['book_id']}", title=title, year=year, domain="book", raw_title=r["title"],
                authors=tuple(a.strip() for a in r["authors"].split(",") if a.strip()), avg_rating=avg,
                extra={k: v for k, v in (("series_title", series), ("ratings_count", r.get("ratings_count") or ""),
                                          ("image_url", r.get("image_url") or "")) if v},
            )
        )
    empty = _ratings_from_columns([], [], [], [])
    return Dataset("goodbooks-10k", Catalog(items, "goodbooks-10k"), empty, notes=("catalog only: no ratings",))


_LOADERS: dict[str, Callable[[DataLocator, bool], Dataset]] = {
    "ml-100k": load_ml100k,
    "ml-1m": load_ml1m,
    "ml-latest-small": load_ml_latest_small,
    "ml-25m": load_ml25m,
    "ml-32m": load_ml32m,
    "goodbooks-10k": load_goodbooks,
}


def load_dataset(name: str, locator: DataLocator | None = None, *, with_text: bool = True) -> Dataset:
    """Load a dataset by name: one of DATASETS."""
    if name not in _LOADERS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return _LOADERS[name](locator or DataLocator(), with_text)


def text_coverage(ds: Dataset) -> dict[str, float]:
    """How many items have a plot/overview, and what share of ratings they carry."""
    has = np.fromiter((bool(it.plot) for it in ds.catalog), dtype=bool, count=len(ds.catalog))
    per_item = np.bincount(ds.ratings.item, minlength=len(ds.catalog))
    total = max(int(per_item.sum()), 1)
    return {
        "items": len(ds.catalog),
        "items_with_text": int(has.sum()),
        "item_share": float(has.mean()) if len(has) else 0.0,
        "rating_share": float(per_item[has].sum() / total),
    }


def clear_cache(cache_dir: Path = DEFAULT_CACHE) -> None:
    """Remove downloaded data (used by `chatrec-index --clear-data`)."""
    shutil.rmtree(cache_dir / "data", ignore_errors=False)
