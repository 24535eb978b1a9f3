"""Every `chatrec-eval` command finds its data through the app's Settings: CHATREC_* variables, then flags."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from chatrec.eval import lmrecsys, offline, pooling, tune
from chatrec.eval.data_flags import add_data_flags, settings_for
from tests.conftest import ROOT, SHARED_DATA, requires_data


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_data_flags(p)
    return p.parse_args(argv)


def test_flags_override_the_environment(tmp_path):
    env = {"CHATREC_DATA_DIR": str(tmp_path / "env"), "CHATREC_CACHE_DIR": str(tmp_path / "cache"),
           "CHATREC_ALLOW_DOWNLOAD": "0"}
    s = settings_for(_args([]), env)
    assert (s.data_dir, s.cache_dir, s.allow_download) == (tmp_path / "env", tmp_path / "cache", False)
    s = settings_for(_args(["--data-dir", str(tmp_path / "flag"), "--allow-download"]), env)
    assert (s.data_dir, s.cache_dir, s.allow_download) == (tmp_path / "flag", tmp_path / "cache", True)


def test_bad_variable_is_a_usage_error_without_its_value():
    with pytest.raises(SystemExit, match="allow_download") as e:
        settings_for(_args([]), {"CHATREC_ALLOW_DOWNLOAD": "sometimes-secret"})
    assert "sometimes-secret" not in str(e.value)


@pytest.mark.parametrize("module", [offline, tune, pooling])
def test_commands_read_the_data_folder_from_the_environment(module, tmp_path, monkeypatch, capsys):
    # An empty CHATREC_DATA_DIR with downloads off: the command must look exactly there and say so, not download.
    monkeypatch.setenv("CHATREC_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("CHATREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHATREC_ALLOW_DOWNLOAD", "0")
    assert module.main(["--dataset", "ml-100k", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty" / "ml-100k") in err and "CHATREC_DATA_DIR" in err
    assert not (tmp_path / "cache" / "downloads").exists()


def test_lmrecsys_takes_the_data_flags_too():
    args = lmrecsys.build_parser().parse_args(["--data-dir", "/d", "--no-allow-download"])
    s = settings_for(args, {})
    assert str(s.data_dir) == "/d" and s.allow_download is False


@requires_data("ml-100k")
def test_offline_cli_works_offline_from_chatrec_data_dir(tmp_path):
    """The issue's case: `CHATREC_DATA_DIR=... chatrec-eval offline --dataset ml-100k`, as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATREC_")}
    env.update(CHATREC_DATA_DIR=str(SHARED_DATA), CHATREC_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "chatrec.eval.cli", "offline", "--dataset", "ml-100k", "--seeds", "1",
                          "--generators", "popularity", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "report.md").is_file() and "popularity" in run.stdout
    assert not (tmp_path / "cache" / "downloads").exists()  # found locally: nothing fetched
