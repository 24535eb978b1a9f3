"""Where every `chatrec-eval` command finds its data: the app's Settings, so defaults ← CHATREC_* ← flags.

`CHATREC_DATA_DIR=../shared/data chatrec-eval offline --dataset ml-100k` reads the files there and downloads
nothing; `CHATREC_ALLOW_DOWNLOAD=0` (or `--no-allow-download`) forbids downloads; `CHATREC_CACHE_DIR` moves the
cache. Commands whose parser is the app's own (`dialogue`, `redial`) get this from `settings.from_args`; the others
have flags of their own that would clash with the app's (`--als-factors`), so they add only these three.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

from pydantic import ValidationError

from retrieval.datasets import DataLocator

from ..settings import Settings, from_env

_FLAGS = ("data_dir", "cache_dir", "allow_download")


def add_data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (each defaults to its CHATREC_* variable, as in the app)")
    g.add_argument("--data-dir", type=Path, default=None,
                   help="folder holding ml-100k/, ml-1m/, ... (CHATREC_DATA_DIR; else the cache)")
    g.add_argument("--cache-dir", type=Path, default=None, help="downloads and fitted models (CHATREC_CACHE_DIR)")
    g.add_argument("--allow-download", action=argparse.BooleanOptionalAction, default=None,
                   help="download missing datasets from the publisher (CHATREC_ALLOW_DOWNLOAD; default yes)")


def settings_for(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The app's settings from the environment, with the data flags given on the command line on top.

    A bad CHATREC_* value ends the command with a usage error naming the setting (never its value)."""
    try:
        s = from_env(env)
        given = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
        return s.replace(**given) if given else s
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'settings'}: {err['msg']}"
                          for err in e.errors(include_input=False, include_url=False))
        raise SystemExit(f"invalid settings: {where}") from None


def locator_for(settings: Settings, progress: bool = True) -> DataLocator:
    return DataLocator(data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                       allow_download=settings.allow_download, progress=progress)
