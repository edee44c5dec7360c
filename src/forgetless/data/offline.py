"""Knowing at once that the Hugging Face hub cannot be reached, instead of after retries.

Without a network and without `HF_HUB_OFFLINE=1`, `datasets` retries every request before it gives
up (measured here: 25 s of "Retrying in 8s" before lm-eval's `arc_easy` failed with "Name or service
not known"). One short connection attempt tells the same thing in milliseconds; when it fails, the
hub libraries are put in offline mode for the call, so they read their local caches only and fail
at once when the data is not there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

TRUE = {"1", "ON", "YES", "TRUE"}


def offline_by_env() -> bool:
    """The user said so: HF_HUB_OFFLINE (or HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE) is set true."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(n, "").upper() in TRUE for n in names)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub (HF_ENDPOINT, default huggingface.co:443) opens within `timeout`."""
    if offline_by_env():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:  # no route, no DNS, refused, timed out: all mean "not now"
        return False


@contextmanager
def offline_unless_reachable() -> Iterator[bool]:
    """Inside, `datasets` and `huggingface_hub` are in offline mode when the hub cannot be reached.

    Yields whether the hub is reachable. Both libraries read the offline flag from the environment at
    import, so setting the variable now would do nothing: their module constants are set for the
    call and restored after it.
    """
    if hub_reachable():
        yield True
        return
    import datasets.config
    import huggingface_hub.constants

    saved = huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    huggingface_hub.constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield False
    finally:
        huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
