"""lm_loading: GGUF → cached transformers copy, clear errors for missing or unreadable models (no network)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.lm_loading import ModelLoadError, ModelNotFoundError, load_lm, resolve_source
from tests.conftest import TEST_CACHE

GGUF_DIR = Path(os.environ.get("CHATREC_TEST_GGUF_DIR", Path.home() / ".cache" / "chatrec-ci" / "models")).expanduser()
SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
requires_smol = pytest.mark.skipif(not (GGUF_DIR / SMOL).is_file(), reason=f"needs {SMOL} in {GGUF_DIR}")


def test_missing_path_says_what_to_check(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_lm(tmp_path / "nope" / "model.gguf")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_lm("./no/such/folder")


def test_folder_without_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_source(tmp_path)
    (tmp_path / "a.gguf").write_bytes(b"x")
    (tmp_path / "b.gguf").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="2 found"):
        resolve_source(tmp_path)
    with pytest.raises(ModelNotFoundError, match="not in"):
        resolve_source(tmp_path, "c.gguf")
    assert resolve_source(tmp_path, "a.gguf") == (str(tmp_path), "a.gguf")
    assert resolve_source(tmp_path / "b.gguf") == (str(tmp_path), "b.gguf")


def test_wrong_file_type_and_empty_name(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a .gguf"):
        resolve_source(f)
    with pytest.raises(ModelLoadError, match="no model given"):
        resolve_source("")


def test_corrupt_gguf_is_a_load_error(tmp_path):
    (tmp_path / "broken.gguf").write_bytes(b"GGUF not really")
    with pytest.raises(ModelLoadError, match="could not read GGUF"):
        load_lm(tmp_path / "broken.gguf", cache_dir=tmp_path / "cache")


def test_uncached_model_id_fails_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only already forbids downloads
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="allow downloads"):
        load_lm("chatrec-tests/no-such-model")


@pytest.mark.parametrize("download", [False, True])
def test_model_id_goes_to_the_hub_only_when_downloads_are_allowed(tmp_path, monkeypatch, download):
    import transformers

    asked = {}

    def record(name, **kw):  # stands in for the Hub: this test checks the flag, not the network
        asked.update(kw)
        raise OSError("not reachable in tests")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    with pytest.raises(ModelNotFoundError):
        load_lm("chatrec-tests/no-such-model", download=download)
    assert asked["local_files_only"] is (not download)


@requires_smol
def test_gguf_loads_once_then_from_cached_copy():
    lm = load_lm(GGUF_DIR / SMOL, cache_dir=TEST_CACHE)
    copy = Path(lm.loaded_from)
    assert copy.is_relative_to(TEST_CACHE / "lm") and (copy / "config.json").is_file()
    assert not hasattr(lm.model.config, "quantization_config")
    again = load_lm(GGUF_DIR, gguf_file=SMOL, cache_dir=TEST_CACHE)  # folder + file name: same copy
    assert again.loaded_from == lm.loaded_from
    assert lm.kind == "causal"
    assert lm.device.type in ("cpu", "cuda")
    ids = lm.tokenizer(" The Matrix", add_special_tokens=False)["input_ids"]
    assert len(ids) >= 1 and lm.model.config.vocab_size > max(ids)
