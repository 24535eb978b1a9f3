"""Catalog enrichment (`chatrec-index enrich`): what a movie card needs that MovieLens lacks, fetched once and cached.

With a TMDB API key, per movie by `links.tmdbId` (one request: `/3/movie/{id}?language=ko-KR` with credits and
release dates appended): the Korean title and overview, poster, runtime, age certifications (KR, US), original
language and production countries, director and top cast. Without a key: Korean labels from Wikidata by IMDb id
(SPARQL on property P345, 50 ids a request). Requests are spaced (`min_interval_s`) and retried with backoff on
429 / 5xx / network errors (tenacity); every answer is appended to a JSON-lines file under
`DATA_DIR/enrich/` as it arrives, so an interrupted run resumes where it stopped. The app only ever reads these
files (`read_cache`, `apply`): start-up never waits on the network.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from .types import Item

log = logging.getLogger(__name__)

FOLDER = "enrich"
TMDB_FILE = "tmdb.jsonl"
WIKIDATA_FILE = "wikidata.jsonl"
TMDB_API = "https://api.themoviedb.org/3"
TMDB_IMAGES = "https://image.tmdb.org/t/p/w342"
WIKIDATA_SPARQL = "https://query.wikidata.org/sparql"
USER_AGENT = "chatrec-enrich/1.0 (https://github.com/; offline catalog enrichment)"
WIKIDATA_BATCH = 50
TOP_CAST = 5


class EnrichError(Exception):
    """A request that failed for good (after retries), or an answer that is not what the API documents."""


class _Retryable(EnrichError):
    """429, 5xx or a network error: worth another try after a pause."""


@dataclass(frozen=True)
class Cache:
    """What earlier runs fetched: TMDB facts by TMDB id, Korean Wikidata labels by IMDb id."""

    tmdb: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    wikidata: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tmdb) + len(self.wikidata)


def cache_root(data_dir: Path | str | None, cache_dir: Path | str) -> Path:
    """The enrichment folder: under the data dir when one is set, else under the user cache's data folder."""
    return (Path(data_dir) if data_dir is not None else Path(cache_dir) / "data") / FOLDER


def _read_lines(path: Path) -> Iterable[dict]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                # A run killed mid-write leaves a partial last line: that movie is simply fetched again.
                log.warning("%s:%d is not JSON; ignored", path, n)
                continue
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                yield row


def read_cache(root: Path) -> Cache:
    """Everything cached under `root` (empty when nothing was fetched yet). Never touches the network."""
    tmdb = {r["key"]: r["data"] for r in _read_lines(root / TMDB_FILE) if isinstance(r.get("data"), dict)}
    wiki = {r["key"]: r["title_ko"] for r in _read_lines(root / WIKIDATA_FILE) if isinstance(r.get("title_ko"), str)}
    return Cache(tmdb, wiki)


def _text(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    return v.strip() if isinstance(v, str) else ""


def _strs(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = d.get(key)
    return tuple(x for x in v if isinstance(x, str) and x) if isinstance(v, list) else ()


def apply(item: Item, cache: Cache) -> Item:
    """`item` with the cached facts filled in where it has none (the catalog's own data wins)."""
    kw: dict[str, Any] = {}
    wiki_ko = cache.wikidata.get(item.imdb_id, "") if item.imdb_id else ""
    d = cache.tmdb.get(item.tmdb_id) if item.tmdb_id else None
    if d:
        runtime = d.get("runtime")
        kw = {
            "title_ko": item.title_ko or _text(d, "title_ko"),
            "overview_ko": item.overview_ko or _text(d, "overview_ko"),
            "poster_url": item.poster_url or _text(d, "poster_url"),
            "runtime": item.runtime or (runtime if isinstance(runtime, int) and runtime > 0 else None),
            "certification_kr": item.certification_kr or _text(d, "certification_kr"),
            "certification_us": item.certification_us or _text(d, "certification_us"),
            "original_language": item.original_language or _text(d, "original_language"),
            "countries": item.countries or _strs(d, "countries"),
            "directors": item.directors or _strs(d, "directors"),
            "actors": item.actors or _strs(d, "actors"),
        }
    if wiki_ko and not (item.title_ko or kw.get("title_ko")):
        kw["title_ko"] = wiki_ko
    return replace(item, **kw) if kw else item


def _has_hangul(s: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in s)


def parse_tmdb(doc: Mapping[str, Any], image_base: str = TMDB_IMAGES) -> dict[str, Any]:
    """The cached facts from a `/3/movie/{id}?language=ko-KR&append_to_response=credits,release_dates` answer.

    TMDB answers ko-KR with the original title and an empty overview where no Korean translation exists: those
    are not Korean titles and are left out."""
    if not isinstance(doc, Mapping) or "id" not in doc:
        raise EnrichError("TMDB answer has no movie id")
    title = _text(doc, "title")
    poster = _text(doc, "poster_path")
    certs: dict[str, str] = {}
    for country in (doc.get("release_dates") or {}).get("results") or []:
        code = country.get("iso_3166_1")
        if code in ("KR", "US"):
            # Theatrical releases (type 3) first: a TV or home release may carry another rating.
            dates = sorted(country.get("release_dates") or [], key=lambda r: r.get("type") != 3)
            certs[code] = next((c for r in dates if (c := (r.get("certification") or "").strip())), "")
    credits = doc.get("credits") or {}
    cast = sorted((c for c in credits.get("cast") or [] if isinstance(c, dict) and c.get("name")),
                  key=lambda c: c.get("order", 999))
    runtime = doc.get("runtime")
    return {
        "title_ko": title if _has_hangul(title) else "",
        "overview_ko": _text(doc, "overview") if _has_hangul(_text(doc, "overview")) else "",
        "poster_url": image_base + poster if poster.startswith("/") else "",
        "runtime": runtime if isinstance(runtime, int) and runtime > 0 else None,
        "certification_kr": certs.get("KR", ""),
        "certification_us": certs.get("US", ""),
        "original_language": _text(doc, "original_language"),
        "countries": [c["iso_3166_1"] for c in doc.get("production_countries") or []
                      if isinstance(c, dict) and isinstance(c.get("iso_3166_1"), str)],
        "directors": [c["name"] for c in credits.get("crew") or []
                      if isinstance(c, dict) and c.get("job") == "Director" and c.get("name")],
        "actors": [c["name"] for c in cast[:TOP_CAST]],
    }


def parse_wikidata(doc: Mapping[str, Any]) -> dict[str, str]:
    """IMDb id → Korean label from a SPARQL JSON answer with the variables `imdb` and `label`."""
    out: dict[str, str] = {}
    try:
        rows = doc["results"]["bindings"]
    except (KeyError, TypeError):
        raise EnrichError("Wikidata answer has no results.bindings") from None
    for b in rows:
        imdb = (b.get("imdb") or {}).get("value")
        label = (b.get("label") or {}).get("value")
        if isinstance(imdb, str) and isinstance(label, str) and _has_hangul(label):
            out.setdefault(imdb, label.strip())
    return out


def wikidata_query(imdb_ids: Sequence[str]) -> str:
    values = " ".join(f'"{i}"' for i in imdb_ids if i.startswith("tt") and i[2:].isdigit())
    return ("SELECT ?imdb ?label WHERE { VALUES ?imdb { " + values + " } ?film wdt:P345 ?imdb . "
            '?film rdfs:label ?label . FILTER(LANG(?label) = "ko") }')


@dataclass
class Fetcher:
    """GET JSON with spacing between requests and retries with exponential backoff (429, 5xx, network)."""

    min_interval_s: float = 0.25
    attempts: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 20.0
    _last: float = 0.0

    def get_json(self, url: str) -> Any:
        call = retry(retry=retry_if_exception(lambda e: isinstance(e, _Retryable)), reraise=True,
                     stop=stop_after_attempt(self.attempts),
                     wait=wait_exponential(multiplier=self.backoff_s, max=30 * self.backoff_s))(self._once)
        try:
            return call(url)
        except _Retryable as e:
            raise EnrichError(str(e)) from None

    def _once(self, url: str) -> Any:
        pause = self._last + self.min_interval_s - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last = time.monotonic()
        req = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            if e.code == 429 or e.code >= 500:
                raise _Retryable(f"HTTP {e.code} from {_where(url)}") from None
            raise EnrichError(f"HTTP {e.code} from {_where(url)}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise _Retryable(f"{_where(url)} unreachable: {getattr(e, 'reason', e)}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EnrichError(f"{_where(url)} did not answer JSON") from None


def _where(url: str) -> str:
    """The host and path only: the query holds the API key."""
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}{u.path}"


@dataclass
class Report:
    fetched: int = 0
    cached: int = 0  # already in the cache before this run (resumed)
    not_found: int = 0
    failed: int = 0
    korean_titles: int = 0

    def __str__(self) -> str:
        return (f"{self.fetched} fetched ({self.korean_titles} with a Korean title), {self.cached} already cached, "
                f"{self.not_found} not found, {self.failed} failed")


def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def enrich(items: Sequence[Item], root: Path, *, tmdb_api_key: str = "", tmdb_url: str = TMDB_API,
           wikidata_url: str = WIKIDATA_SPARQL, image_base: str = TMDB_IMAGES, fetcher: Fetcher | None = None,
           limit: int | None = None, progress: bool = True) -> Report:
    """Fetch what is not cached yet for `items` (TMDB with a key, Wikidata without) into `root`."""
    from tqdm.auto import tqdm

    root.mkdir(parents=True, exist_ok=True)
    fetcher = fetcher or Fetcher(min_interval_s=0.25 if tmdb_api_key else 1.0)
    cache = read_cache(root)
    report = Report()
    if tmdb_api_key:
        ids = list(dict.fromkeys(it.tmdb_id for it in items if it.tmdb_id))
        todo = [i for i in ids if i not in cache.tmdb]
        report.cached = len(ids) - len(todo)
        todo = todo[:limit] if limit is not None else todo
        for tmdb_id in tqdm(todo, desc="TMDB", unit=" movies", disable=not progress):
            query = urllib.parse.urlencode({"api_key": tmdb_api_key, "language": "ko-KR",
                                            "append_to_response": "credits,release_dates"})
            try:
                data = parse_tmdb(fetcher.get_json(f"{tmdb_url}/movie/{tmdb_id}?{query}"), image_base)
            except EnrichError as e:
                if "HTTP 404" in str(e):
                    report.not_found += 1
                    _append(root / TMDB_FILE, {"key": tmdb_id, "data": {}})  # known missing: not asked again
                else:
                    report.failed += 1
                    log.warning("TMDB %s: %s", tmdb_id, e)
                continue
            _append(root / TMDB_FILE, {"key": tmdb_id, "data": data})
            report.fetched += 1
            report.korean_titles += bool(data["title_ko"])
        return report
    ids = list(dict.fromkeys(it.imdb_id for it in items if it.imdb_id))
    todo = [i for i in ids if i not in cache.wikidata]
    report.cached = len(ids) - len(todo)
    todo = todo[:limit] if limit is not None else todo
    batches = [todo[i:i + WIKIDATA_BATCH] for i in range(0, len(todo), WIKIDATA_BATCH)]
    with tqdm(total=len(todo), desc="Wikidata", unit=" movies", disable=not progress) as bar:
        for batch in batches:
            query = urllib.parse.urlencode({"query": wikidata_query(batch), "format": "json"})
            try:
                labels = parse_wikidata(fetcher.get_json(f"{wikidata_url}?{query}"))
            except EnrichError as e:
                report.failed += len(batch)
                log.warning("Wikidata batch of %d: %s", len(batch), e)
                bar.update(len(batch))
                continue
            for imdb_id in batch:
                label = labels.get(imdb_id, "")
                _append(root / WIKIDATA_FILE, {"key": imdb_id, "title_ko": label})
                report.fetched += 1
                report.korean_titles += bool(label)
                report.not_found += not label
            bar.update(len(batch))
    return report
