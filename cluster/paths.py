"""Where user-given paths point: relative paths resolve against the working directory, caches live per user.

    user_cache_dir()          # $RLVR_CACHE_DIR, else $XDG_CACHE_HOME/rlvr, else ~/.cache/rlvr
    resolve_model_path("my-model")   # an absolute HF directory, or a hub id that was checked, or a ConfigError
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cluster.config_error import ConfigError

# What the hub accepts as a repo id: 'name' or 'owner/name' (letters, digits, '-', '_', '.').
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def user_cache_dir() -> Path:
    """rlvr's cache shared by every run of this user, wherever it is started from (a Ray job's temp dir too)."""
    if os.environ.get("RLVR_CACHE_DIR"):
        return Path(os.environ["RLVR_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rlvr"


def prior_cache_dir(cache_dir: str | None) -> Path:
    """model.embedded.cache_dir when set (relative: against the working directory), else the user cache."""
    return Path(cache_dir).expanduser().absolute() if cache_dir else user_cache_dir() / "priors"


def _hub_config(repo_id: str) -> str:
    """Fetch (or find in the HF cache) the hub model's config.json; raises on any failure."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):
        return cached
    return hf_hub_download(repo_id, "config.json", etag_timeout=5)


def resolve_model_path(given: str) -> str:
    """An HF directory (absolute), the hf/ export of an rlvr checkpoint directory, or a hub id whose config was
    found. Relative paths resolve against the working directory; the error says whether a hub id was tried."""
    path = Path(given).expanduser().absolute()
    if (path / "hf" / "config.json").is_file():  # an rlvr checkpoint directory: its HF export
        return str(path / "hf")
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.path={given!r} ({path}) has no config.json: give an HF model directory, an "
                              "rlvr checkpoint directory (with hf/), or a hub id")
        return str(path)
    where = f"model.path={given!r}: {path} does not exist (relative paths resolve against the working directory)"
    if given.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(given):
        raise ConfigError(f"{where}; not tried as a hub id (it is not of the form 'owner/name'). Give an HF model "
                          "directory or an rlvr checkpoint directory")
    try:
        _hub_config(given)
    except Exception as e:  # offline, unknown repo, gated, ...: all mean "not usable as a hub id"
        raise ConfigError(f"{where}; tried as a hub id, that failed too: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}. Fix the path, or make the hub reachable "
                          "(or the model cached) for a hub id") from None
    return given
