"""What a run records never holds credentials written into URLs.

API keys never go in config (backends read them from environment variables named in config), but
a server address can carry them (``https://user:token@host/v1?api_key=...``), and configs are
recorded with every run (the manifest, the stage fingerprints). Before lettingo records a config,
``user:password@`` and the values of key-like query parameters become ``***``.
"""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_QUERY_SECRET = re.compile(r"(?P<name>[?&](?:[\w-]*(?:key|token|secret|password|passwd|sig|signature)[\w-]*)=)[^&#\s]*",
                           re.IGNORECASE)


def scrub_urls(value: Any) -> Any:
    """``value`` with URL credentials masked, recursing into dicts and lists."""
    if isinstance(value, str):
        return _QUERY_SECRET.sub(r"\g<name>***", _USERINFO.sub(r"\g<scheme>***@", value))
    if isinstance(value, dict):
        return {key: scrub_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_urls(item) for item in value]
    return value
