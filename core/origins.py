"""Web origins (scheme, host and port) and proxy addresses, in one spelling.

A browser names the page that sent a request by its origin
(`Origin: http://127.0.0.1:7860`); the settings list the origins an operator
trusts. Both go through `web_origin` so that `HTTP://Host:80/` and
`http://host` compare equal. Nothing here knows of a web framework.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def web_origin(url: str) -> str:
    """`scheme://host[:port]` of `url` (lower case, default port left out); a
    ValueError when `url` has no http(s) scheme and host, or has credentials."""
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    try:
        host, port = parts.hostname, parts.port
    except ValueError as err:  # a port that is not a number, or out of range
        raise ValueError(f"'{url}' is not an origin: {err}") from None
    if scheme is None or not host or parts.username is not None:
        raise ValueError(f"'{url}' is not an origin such as https://studio.example.org")
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


def listed_origins(value: str | Iterable[str]) -> tuple[str, ...]:
    """Operator-listed origins, from a comma-separated string or a list, each
    checked and spelled by `web_origin`; a path after the origin is an error
    (an origin has none), so a typo does not silently trust nothing."""
    found = []
    for item in _items(value):
        origin, parts = web_origin(item), urlsplit(item)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"'{item}' is not an origin: drop what follows {origin}")
        found.append(origin)
    return tuple(dict.fromkeys(found))


def listed_proxies(value: str | Iterable[str]) -> tuple[str, ...]:
    """Proxy addresses whose `X-Forwarded-For`/`-Proto` headers are believed: IP
    addresses or networks (`10.0.0.0/8`), or `*` for any (only when nothing but
    the proxy can reach the studio)."""
    found = []
    for item in _items(value):
        if item == "*":
            found.append(item)
            continue
        try:
            parsed = ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(f"'{item}' is not an IP address or network") from None
        found.append(str(parsed))
    return tuple(dict.fromkeys(found))


def _items(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]
