"""Catalog enrichment against a local HTTP server that answers with recorded responses in the formats TMDB
(`/3/movie/{id}?language=ko-KR&append_to_response=credits,release_dates`) and the Wikidata SPARQL endpoint
document. No test needs the internet."""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retrieval import enrich
from retrieval.types import Item
from tests.conftest import ROOT

RECORDED = ROOT / "tests" / "data" / "enrich"
KEY = "test-key"


class _Server:
    """Serves the recorded answers; 862 answers 429 once first (the client must retry), 999 is unknown (404)."""

    def __init__(self):
        self.requests: list[str] = []
        self.throttled: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep the test output clean
                return None

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(url.query)
                outer.requests.append(url.path)
                if url.path.startswith("/3/movie/"):
                    mid = url.path.rsplit("/", 1)[1]
                    if q.get("api_key") != [KEY] or q.get("language") != ["ko-KR"]:
                        return self._send(401, {"status_code": 7, "status_message": "Invalid API key"})
                    if mid == "862" and mid not in outer.throttled:
                        outer.throttled.add(mid)
                        return self._send(429, {"status_code": 25, "status_message": "Rate limit"})
                    path = RECORDED / f"tmdb_{mid}.json"
                    return self._send(200, json.loads(path.read_text("utf-8"))) if path.is_file() else \
                        self._send(404, json.loads((RECORDED / "tmdb_404.json").read_text("utf-8")))
                if url.path == "/sparql":
                    assert "P345" in q["query"][0]
                    return self._send(200, json.loads((RECORDED / "wikidata.json").read_text("utf-8")))
                return self._send(404, {})

            def _send(self, code, body):
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()


def _items():
    return [Item("mls:2571", "The Matrix", 1999, ("Action", "Sci-Fi"), tmdb_id="603", imdb_id="tt0133093"),
            Item("mls:1", "Toy Story", 1995, ("Animation",), tmdb_id="862", imdb_id="tt0114709"),
            Item("mls:9", "Lost Film", 1990, tmdb_id="999", imdb_id="tt9999999")]


def _fetcher():
    return enrich.Fetcher(min_interval_s=0.0, backoff_s=0.01)


def test_tmdb_with_key_fills_the_cache_retries_and_resumes(server, tmp_path):
    report = enrich.enrich(_items(), tmp_path, tmdb_api_key=KEY, tmdb_url=server.url + "/3", fetcher=_fetcher(),
                           image_base="https://image.tmdb.org/t/p/w342", progress=False)
    assert (report.fetched, report.not_found, report.failed, report.korean_titles) == (2, 1, 0, 1)
    assert server.requests.count("/3/movie/862") == 2  # the 429 was retried
    cache = enrich.read_cache(tmp_path)
    m = cache.tmdb["603"]
    assert m["title_ko"] == "매트릭스" and m["overview_ko"].startswith("서기 2199년")
    assert m["poster_url"] == "https://image.tmdb.org/t/p/w342/7Tbk6DGbEvSPRrSSZBLeS9n8GSX.jpg"
    assert (m["runtime"], m["certification_kr"], m["certification_us"]) == (136, "15", "R")
    assert m["countries"] == ["AU", "US"] and m["original_language"] == "en"
    assert m["directors"] == ["Lilly Wachowski", "Lana Wachowski"]
    assert m["actors"][:2] == ["Keanu Reeves", "Laurence Fishburne"] and len(m["actors"]) == enrich.TOP_CAST
    # ko-KR without a Korean translation answers the English title and no overview: not a Korean title.
    assert cache.tmdb["862"]["title_ko"] == "" and cache.tmdb["862"]["overview_ko"] == ""
    assert cache.tmdb["999"] == {}  # known missing: not asked again

    # A second run finds everything cached and sends nothing.
    before = len(server.requests)
    again = enrich.enrich(_items(), tmp_path, tmdb_api_key=KEY, tmdb_url=server.url + "/3", fetcher=_fetcher(),
                          progress=False)
    assert again.fetched == 0 and again.cached == 3 and len(server.requests) == before


def test_without_key_korean_labels_from_wikidata(server, tmp_path):
    report = enrich.enrich(_items(), tmp_path, wikidata_url=server.url + "/sparql", fetcher=_fetcher(),
                           progress=False)
    assert report.fetched == 3 and report.korean_titles == 2 and server.requests == ["/sparql"]
    cache = enrich.read_cache(tmp_path)
    assert cache.wikidata == {"tt0133093": "매트릭스", "tt0114709": "토이 스토리", "tt9999999": ""}
    toy = enrich.apply(_items()[1], cache)
    assert toy.title_ko == "토이 스토리"


def test_apply_fills_only_what_the_catalog_lacks(server, tmp_path):
    enrich.enrich(_items()[:1], tmp_path, tmdb_api_key=KEY, tmdb_url=server.url + "/3", fetcher=_fetcher(),
                  progress=False)
    cache = enrich.read_cache(tmp_path)
    own = Item("mls:2571", "The Matrix", 1999, tmdb_id="603", directors=("The Wachowskis",), runtime=130)
    out = enrich.apply(own, cache)
    assert out.directors == ("The Wachowskis",) and out.runtime == 130  # the catalog's own data wins
    assert out.title_ko == "매트릭스" and out.certification_kr == "15" and out.poster_url.endswith(".jpg")


def test_a_broken_cache_line_and_an_unreachable_server_break_nothing(tmp_path):
    (tmp_path / enrich.TMDB_FILE).write_text('{"key": "603", "data": {"title_ko": "매트릭스"}}\n{"key": "86',
                                             encoding="utf-8")
    assert enrich.read_cache(tmp_path).tmdb == {"603": {"title_ko": "매트릭스"}}
    assert len(enrich.read_cache(tmp_path / "nothing-here")) == 0
    fetcher = enrich.Fetcher(min_interval_s=0.0, backoff_s=0.01, attempts=2, timeout_s=2)
    report = enrich.enrich(_items(), tmp_path, tmdb_api_key=KEY, tmdb_url="http://127.0.0.1:9/3", fetcher=fetcher,
                           progress=False)
    assert report.failed == 2 and report.fetched == 0  # 603 was cached; the rest failed and is retried next run


def test_unexpected_answers_are_typed_errors():
    with pytest.raises(enrich.EnrichError):
        enrich.parse_tmdb({"status_code": 34})
    with pytest.raises(enrich.EnrichError):
        enrich.parse_wikidata({"head": {}})


def test_cli_enrich_runs_offline_against_the_local_server(server, tmp_path, monkeypatch):
    from tests.conftest import SHARED_DATA, has_data

    if not has_data("ml-latest-small"):
        pytest.skip(f"needs ml-latest-small in {SHARED_DATA}")
    import shutil

    from chatrec.index_cli import main

    data = tmp_path / "data"
    shutil.copytree(SHARED_DATA / "ml-latest-small", data / "ml-latest-small")
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("CHATREC_TMDB_API_KEY", raising=False)
    code = main(["enrich", "--data-dir", str(data), "--cache-dir", str(tmp_path / "cache"), "--no-download",
                 "--no-progress", "--limit", "2", "--wikidata-url", server.url + "/sparql"])
    assert code == 0
    cache = enrich.read_cache(data / enrich.FOLDER)
    assert len(cache.wikidata) == 2

    # The next catalog load shows what was cached (Toy Story is movieId 1 → tt0114709).
    from retrieval.datasets import DataLocator, load_dataset

    ds = load_dataset("ml-latest-small", DataLocator(data_dir=data, cache_dir=tmp_path / "cache",
                                                     allow_download=False, progress=False), with_text=False)
    assert ds.catalog["mls:1"].title_ko == "토이 스토리" and ds.catalog["mls:1"].imdb_id == "tt0114709"
