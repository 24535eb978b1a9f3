"""Knowledge store on a tiny hand-made catalog, against the real embedded Chroma and a real `chroma run` server."""
from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pytest

from retrieval.documents import (
    ItemFileError,
    content_hash,
    document_text,
    item_from_json,
    lexical_text,
    item_to_json,
    metadata,
    read_items_csv,
    write_items_csv,
)
from retrieval.embeddings import EmbedderUnavailableError, USEMultilingualEmbedding, make_embedder
from retrieval.knowledge import (
    MAX_QUERY_CHARS,
    EncoderMismatchError,
    KnowledgeConfig,
    KnowledgeStore,
    KnowledgeUnavailableError,
    TOKENIZER_VERSION,
    Tokenizer,
    UnknownGenreError,
    rrf,
)
from retrieval.types import Item, UnknownItemError

CATALOG = (
    Item("t:1", "Silent Orbit", 2009, ("Drama", "Sci-Fi"), plot="A lonely astronaut spends three years alone on a "
         "mining station on the far side of the moon and slowly doubts his own memories.", directors=("Ann Lee",)),
    Item("t:2", "Red Harvest Road", 1996, ("Action", "Thriller"), plot="After his family is murdered, a retired "
         "hitman hunts down the gang boss responsible, one by one, in a violent quest for revenge."),
    Item("t:3", "Paper Hearts", 2001, ("Comedy", "Romance"), plot="Two rival bookshop owners in New York fall in "
         "love while exchanging anonymous letters."),
    Item("t:4", "The Little Engine Friends", 1999, ("Animation", "Children"), plot="A small toy train and his "
         "friends learn to work together to save the toy shop at Christmas."),
    Item("t:5", "Dust and Guns", 1968, ("Western",), plot="A lone gunslinger rides into a corrupt frontier town "
         "and faces the rancher who rules it."),
    Item("t:6", "Shadows of the Manor", 1963, ("Horror",), plot="A family moves into an old mansion haunted by the "
         "ghosts of its former owners; doors slam and voices whisper at night."),
    Item("t:7", "Kitchen Stories", 2015, ("Documentary",), plot="Chefs from five countries share recipes and the "
         "history of street food.", extra={"keywords": "food, cooking, chefs"}),
    Item("t:8", "서울의 밤", 2019, ("Crime", "Drama"), plot="서울의 뒷골목에서 형사와 조직 보스가 쫓고 쫓기는 범죄 드라마."),
    Item("b:1", "Androids in the Rain", 1968, domain="book", authors=("Philip Dickson",),
         extra={"series_title": "Machine Dreams #1"}),
    Item("b:2", "The Wizard School", 1997, domain="book", authors=("Jo Rowan",)),
    Item("b:3", "Pasta Every Day", 2010, domain="book", authors=("Marco Bell",), tags=("cooking", "food")),
)

_names = itertools.count()


@pytest.fixture(scope="module")
def embedder():
    return make_embedder()


@pytest.fixture(params=["embedded", "server"])
def config(request, tmp_path) -> KnowledgeConfig:
    name = f"test-{next(_names)}"
    if request.param == "embedded":
        return KnowledgeConfig(path=tmp_path / "chroma", collection=name, progress=False)
    server = request.getfixturevalue("chroma_server")
    return KnowledgeConfig(host=server.host, port=server.port, collection=name, progress=False)


@pytest.fixture
def store(config, embedder) -> KnowledgeStore:
    s = KnowledgeStore.open(config, embedder)
    s.index(CATALOG)
    return s


# --- embeddings -------------------------------------------------------------------------------------------------

def test_embedder_is_a_complete_chroma_embedding_function(embedder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Chroma warns (DeprecationWarning) about any missing protocol method
        assert not embedder.is_legacy()
        rebuilt = USEMultilingualEmbedding.build_from_config(embedder.get_config())
    assert embedder.name() == "chatrec-use-multilingual"
    out = np.asarray(rebuilt(["우주를 배경으로 한 잔잔한 SF", "a quiet film set in space"]))
    assert out.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert float(out[0] @ out[1]) > 0.3  # same meaning across languages


def test_make_embedder_errors_are_typed():
    with pytest.raises(EmbedderUnavailableError, match="use-multilingual"):
        make_embedder("word2vec")
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(EmbedderUnavailableError, match="pip install sentence-transformers"):
            make_embedder("sentence-transformers:all-MiniLM-L6-v2")


# --- documents --------------------------------------------------------------------------------------------------

def test_document_and_metadata():
    movie, book = CATALOG[0], CATALOG[8]
    doc = document_text(movie)
    assert doc.startswith("Silent Orbit (2009).") and "Genres: Drama, Sci-Fi." in doc and "Ann Lee" in doc
    assert "Book by Philip Dickson" in document_text(book) and "Machine Dreams #1" in document_text(book)
    m = metadata(movie)
    assert m["domain"] == "movie" and m["year"] == 2009 and m["genres"] == ["Drama", "Sci-Fi"]
    assert "genres" not in metadata(book)  # Chroma rejects empty lists
    assert item_from_json(item_to_json(movie)) == movie
    assert content_hash(movie) != content_hash(dataclasses.replace(movie, plot=movie.plot + "!"))


def test_items_csv_roundtrip_and_errors(tmp_path):
    p = tmp_path / "new.csv"
    write_items_csv(CATALOG, p)
    back = read_items_csv(p)
    assert [b.id for b in back] == [c.id for c in CATALOG]
    assert back[0].genres == CATALOG[0].genres and back[8].authors == CATALOG[8].authors
    assert back[6].extra["keywords"] == "food, cooking, chefs"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,year\nx:1,Ok,1999\nx:2,Bad,nineteen\n", encoding="utf-8")
    with pytest.raises(ItemFileError, match=r"bad.csv:3: year 'nineteen'"):
        read_items_csv(bad)
    bad.write_text("id,title,colour\nx:1,A,red\n", encoding="utf-8")
    with pytest.raises(ItemFileError, match="unknown column"):
        read_items_csv(bad)
    with pytest.raises(ItemFileError, match="does not exist"):
        read_items_csv(tmp_path / "missing.csv")


# --- lexical pieces ---------------------------------------------------------------------------------------------

def test_tokenizer_korean_morphemes_and_english_stems():
    tok = Tokenizer()
    assert tok("The Revenge Thrillers") == ["reveng", "thriller"]
    ko = tok("우주를 배경으로 한 잔잔한 SF")
    assert "우주" in ko and "배경" in ko and "sf" in ko and "를" not in ko


def test_tokenizer_keeps_latin_words_whole_in_mixed_text():
    # Kiwi alone cuts unknown foreign words: "Kubrick" → "ku" + "brick" would match nothing an English query has.
    tok = Tokenizer()
    mixed = tok("2001: A Space Odyssey (1968). 스탠리 큐브릭 감독. Directed by Stanley Kubrick, a supercomputer HAL 9000.")
    assert {"kubrick", "supercomput", "2001", "9000", "큐브릭", "감독"} <= set(mixed)
    assert not {"ku", "brick"} & set(mixed)
    assert tok("2차 세계대전")[:1] == ["2"]  # a number glued to Hangul is read with it


def test_korean_titles_are_no_bm25_words():
    it = dataclasses.replace(CATALOG[5], title_ko="공포의 저택")
    assert "공포의 저택" in document_text(it) and "공포의 저택" not in lexical_text(it)
    assert lexical_text(CATALOG[0]) == document_text(CATALOG[0])


def test_stored_tokens_of_an_older_tokenizer_are_made_again(tmp_path, embedder):
    cfg = KnowledgeConfig(path=tmp_path / "kb", collection=f"tok{next(_names)}", progress=False)
    store = KnowledgeStore.open(cfg, embedder)
    store.index(CATALOG)
    col = store._col  # noqa: SLF001 — an index written by an older release: old tokens, no version
    col.update(ids=["t:1"], metadatas=[{**store._metas["t:1"], "tokens": "nonsense", "tokens_v": 0}])  # noqa: SLF001
    reopened = KnowledgeStore.open(cfg, embedder)
    assert reopened.search("lonely astronaut moon", k=1, mode="bm25").scored.ids == ("t:1",)
    assert col.get(ids=["t:1"], include=["metadatas"])["metadatas"][0]["tokens_v"] == TOKENIZER_VERSION


def test_rrf_known_answer():
    fused = rrf([["a", "b", "c"], ["c", "a"]], k=60)
    assert [i for i, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="3-512"):
        KnowledgeConfig(path=tmp_path, collection="ab")
    with pytest.raises(ValueError, match="exactly one"):
        KnowledgeConfig(path=tmp_path, host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="port"):
        KnowledgeConfig(host="127.0.0.1")


# --- the store, embedded and server -----------------------------------------------------------------------------

def test_index_is_idempotent_and_updates_changed_items(store, embedder):
    assert store.count() == len(CATALOG)
    again = store.index(CATALOG)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(CATALOG))
    edited = dataclasses.replace(CATALOG[2], plot="Two bakers in Paris fall in love.")
    r = store.index([edited])
    assert (r.added, r.updated) == (0, 1)
    assert "bakers in Paris" in store.document("t:3")
    reopened = KnowledgeStore.open(store.config, embedder)
    assert reopened.count() == len(CATALOG) and "bakers in Paris" in reopened.document("t:3")
    assert reopened.search("bakers in Paris", k=1, mode="bm25").scored.ids == ("t:3",)


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
def test_english_descriptions_find_the_item(store, mode):
    cases = {
        "a retired hitman takes revenge on a gang": "t:2",
        "astronaut alone on the moon": "t:1",
        "haunted mansion with ghosts": "t:6",
    }
    for query, want in cases.items():
        assert store.search(query, k=3, domain="movie", mode=mode).scored.ids[0] == want, query


def test_korean_queries_use_vectors_and_korean_documents_match_bm25(store):
    res = store.search("달에서 홀로 지내는 우주비행사", k=3, domain="movie")
    assert res.scored.ids[0] == "t:1"
    assert any("meaning only" in n for n in res.notes)
    assert store.search("서울 형사", k=1, mode="bm25").scored.ids == ("t:8",)


def test_filters(store):
    ids = store.search("a movie", k=20, domain="movie", genres=["sci-fi"]).scored.ids
    assert ids == ("t:1",)
    assert set(store.search("story", k=20, domain="book").scored.ids) == {"b:1", "b:2", "b:3"}
    old = store.search("a movie", k=20, year_range=(None, 1970)).scored.ids
    assert set(old) == {"t:5", "t:6", "b:1"}
    both = store.search("film", k=20, genres=["Comedy", "Romance"]).scored.ids
    assert both == ("t:3",)
    either = store.search("film", k=20, genres=["Western", "Horror"], genre_match="any").scored.ids
    assert set(either) == {"t:5", "t:6"}
    no_t2 = store.search("revenge hitman", k=5, exclude={"t:2"}).scored.ids
    assert "t:2" not in no_t2 and len(no_t2) == 5


def test_bad_input(store):
    empty = store.search("   ", k=5)
    assert len(empty.scored) == 0 and "empty query" in empty.notes[0]
    huge = store.search("revenge " * 20_000, k=3)
    assert huge.scored.ids[0] == "t:2" and any(f"{MAX_QUERY_CHARS:,}" in n for n in huge.notes)
    with pytest.raises(UnknownGenreError, match="Sci-Fi") as e:
        store.search("x", genres=["Space Opera"])
    assert "known genres" in str(e.value)
    with pytest.raises(ValueError, match="mode"):
        store.search("x", mode="fuzzy")
    with pytest.raises(ValueError, match="start after end"):
        store.search("x", year_range=(2000, 1990))
    with pytest.raises(UnknownItemError):
        store.similar_to(["nope:1"])


def test_similar_to_and_cross_domain(store):
    res = store.similar_to(["t:1"], k=3)
    assert "t:1" not in res.scored.ids and len(res.scored) == 3
    books = store.similar_to(["t:7"], k=1, domain="book")
    assert books.scored.ids == ("b:3",)  # the cooking documentary → the cookbook
    mixed = store.similar_to(["t:1", "missing:9"], k=2)
    assert any("missing:9" in n for n in mixed.notes)


def test_document_and_item_lookup(store):
    assert store.document("t:5").startswith("Dust and Guns (1968).")
    assert store.document("nope") is None
    assert store.item("b:2") == CATALOG[9]
    assert "Sci-Fi" in store.genres


def test_cold_start_items_are_searchable_at_once(store):
    new = Item("new:1", "Glacier Station", 2021, ("Thriller",), plot="Scientists trapped in an Antarctic research "
               "station discover a frozen virus that wakes up.")
    assert store.search("antarctic virus", k=1, mode="bm25").scored.ids != ("new:1",)
    r = store.add_items([new])
    assert r.added == 1 and "new:1" in store
    for mode in ("vector", "bm25", "hybrid"):
        assert store.search("trapped scientists find a frozen virus in Antarctica", k=1, mode=mode).scored.ids == (
            "new:1",), mode


def test_embedded_and_server_agree(tmp_path, embedder, chroma_server):
    emb = KnowledgeStore.open(KnowledgeConfig(path=tmp_path / "c", collection="agree", progress=False), embedder)
    srv = KnowledgeStore.open(KnowledgeConfig(host=chroma_server.host, port=chroma_server.port,
                                              collection=f"agree-{next(_names)}", progress=False), embedder)
    for s in (emb, srv):
        s.index(CATALOG)
    for q in ("revenge", "우주비행사", "a cozy love story", "toys"):
        for mode in ("vector", "bm25", "hybrid"):
            a, b = emb.search(q, k=5, mode=mode), srv.search(q, k=5, mode=mode)
            assert a.scored.ids == b.scored.ids and a.notes == b.notes, (q, mode)
            np.testing.assert_allclose(a.scored.scores, b.scored.scores, atol=1e-4)


def test_encoder_mismatch_is_refused(tmp_path, embedder):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("other-enc", metadata={"encoder": "openai:text-embedding-3-small", "dim": 1536},
                             embedding_function=embedder)
    with pytest.raises(EncoderMismatchError, match="chatrec-index build --rebuild"):
        KnowledgeStore.open(KnowledgeConfig(path=tmp_path / "c", collection="other-enc"), embedder)
    assert KnowledgeStore.drop(KnowledgeConfig(path=tmp_path / "c", collection="other-enc"))
    assert KnowledgeStore.open(KnowledgeConfig(path=tmp_path / "c", collection="other-enc"), embedder).count() == 0


def test_server_down_is_a_typed_error(embedder):
    from tests.fixtures.chroma_server import free_port

    with pytest.raises(KnowledgeUnavailableError, match="ALS alone"):
        KnowledgeStore.open(KnowledgeConfig(host="127.0.0.1", port=free_port()), embedder)


def test_server_stopping_mid_session(tmp_path, embedder):
    """Reads keep working from the in-memory mirror; writes and counts raise the typed error."""
    from tests.fixtures.chroma_server import running_chroma

    with running_chroma(tmp_path / "srv") as server:
        s = KnowledgeStore.open(KnowledgeConfig(host=server.host, port=server.port, progress=False), embedder)
        s.index(CATALOG[:3])
    assert s.search("revenge", k=1).scored.ids == ("t:2",)
    with pytest.raises(KnowledgeUnavailableError, match="stopped answering"):
        s.add_items(CATALOG[3:5])
    with pytest.raises(KnowledgeUnavailableError):
        s.count()


@pytest.mark.parametrize("query", ["revenge", "우주비행사", "toys at Christmas"])
def test_chroma_hnsw_search_matches_exact_on_small_catalog(store, embedder, query):
    ann = KnowledgeStore.open(dataclasses.replace(store.config, vector_search="chroma"), embedder)
    a = store.search(query, k=5, mode="vector", domain="movie", exclude={"t:1"})
    b = ann.search(query, k=5, mode="vector", domain="movie", exclude={"t:1"})
    assert a.scored.ids == b.scored.ids
    np.testing.assert_allclose(a.scored.scores, b.scored.scores, atol=1e-4)


# --- CLI --------------------------------------------------------------------------------------------------------

def test_cli_add_and_search(tmp_path, capsys):
    from chatrec.index_cli import main

    csv_path = tmp_path / "new_items.csv"
    write_items_csv(CATALOG, csv_path)
    args = ["--path", str(tmp_path / "idx"), "--no-progress"]
    assert main(["add", "--file", str(csv_path), *args]) == 0
    assert f"{len(CATALOG)} added" in capsys.readouterr().out
    assert main(["search", "gunslinger in a frontier town", "--k", "1", *args]) == 0
    assert "t:5" in capsys.readouterr().out
    assert main(["search", "x", "--genre", "Space Opera", *args]) == 2
    assert "known genres" in capsys.readouterr().err
    assert main(["add", "--file", str(tmp_path / "missing.csv"), *args]) == 2
    assert main(["info", "--chroma-host", "127.0.0.1", "--chroma-port", "1"]) == 3
