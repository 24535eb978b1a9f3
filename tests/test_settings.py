from pathlib import Path

import pytest

from chatrec.settings import Settings, from_args, from_env


def test_defaults_env_then_flags():
    s, _ = from_args(["--n-recs", "7", "--no-books", "--port", "9001"],
                     env={"CHATREC_PORT": "9000", "CHATREC_DATA_DIR": "/d", "CHROMA_PORT": "8000"})
    assert s.n_recs == 7 and s.books is False and s.port == 9001 and s.data_dir == Path("/d")
    assert s.chroma_port == 8000 and s.host == "127.0.0.1" and s.share is False and s.llm_backend == "none"


def test_base_url_switches_backend_but_bare_key_does_not():
    assert from_env({"OPENAI_API_KEY": "sk-secret"}).llm_backend == "none"
    s = from_env({"CHATREC_LLM_BASE_URL": "http://127.0.0.1:8080/v1", "OPENAI_API_KEY": "sk-secret"})
    assert s.llm_backend == "openai" and s.llm_api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(s) and s.redacted()["llm_api_key"] == "***"


def test_invalid_values_are_rejected_with_a_message():
    with pytest.raises(ValueError, match="llm_backend"):
        Settings(llm_backend="gpt")
    with pytest.raises(ValueError, match="n_recs"):
        Settings(n_recs=0)
