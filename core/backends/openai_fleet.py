"""Which of several OpenAI-compatible servers (one judge, served by a fleet of
vLLM or SGLang replicas) takes the next request.

    GRM_STUDIO_MODEL=http://gpu1:8000/v1,http://gpu2:8000/v1

Requests go round-robin over the servers in rotation. A server that fails (no
connection, a 5xx, no answer in time) is taken out of rotation for a cool-down
(`GRM_STUDIO_API_COOLDOWN_S`); once it is over, the next request that would go
to it first checks it (`GET {base}/models`): it is back on a 200, out for
another cool-down otherwise. Only one caller checks a server at a time. With
every server out of rotation a request fails at once with `ServersDownError`,
which names each server and why it is out: never a silent reward.

A fleet of one server is never taken out of rotation: there is nowhere else
to send a request, so its caller's retries (backoff) are the only remedy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import ServersDownError

log = logging.getLogger(__name__)

Probe = Callable[[str], str | None]  # a server's base URL -> None if healthy, else why not


@dataclass
class _Server:
    url: str
    down_until: float | None = None  # monotonic seconds; None: in rotation
    why: str = ""
    checking: bool = False  # a caller is checking it now


class ServerFleet:
    """The servers' rotation and health (thread-safe)."""

    def __init__(self, urls: Sequence[str], *, cooldown_s: float, probe: Probe,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("a fleet needs at least one server")
        self._servers = [_Server(url) for url in urls]
        self.cooldown_s = cooldown_s
        self._probe = probe
        self._clock = clock
        self._next = 0
        self._lock = threading.Lock()

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(s.url for s in self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def pick(self) -> str:
        """The next server in rotation, round-robin; a server whose cool-down is
        over is checked first. ServersDownError when none can take the request."""
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self._servers)
        order = self._servers[start:] + self._servers[:start]
        for server in order:
            with self._lock:
                if server.down_until is None:
                    return server.url
                if server.checking or self._clock() < server.down_until:
                    continue
                server.checking = True
            if self._recovered(server):
                return server.url
        raise ServersDownError(self._down_message())

    def fail(self, url: str, why: str) -> bool:
        """Take `url` out of rotation for the cool-down (in a fleet of more than one);
        True when another server may take the request at once (fail over)."""
        if len(self._servers) == 1:
            return False
        with self._lock:
            server = next(s for s in self._servers if s.url == url)
            if server.down_until is None:
                log.warning("judge server %s is out of rotation for %g s: %s",
                            url, self.cooldown_s, why)
            server.down_until, server.why = self._clock() + self.cooldown_s, why
            now = self._clock()
            return any(s.down_until is None or (not s.checking and now >= s.down_until)
                       for s in self._servers if s is not server)

    def _recovered(self, server: _Server) -> bool:
        """Check `server` (claimed by this caller): back in rotation, or out again."""
        why = self._probe(server.url)
        with self._lock:
            server.checking = False
            if why is None:
                server.down_until, server.why = None, ""
                log.warning("judge server %s is back in rotation", server.url)
                return True
            server.down_until = self._clock() + self.cooldown_s
            server.why = f"health check: {why}"
            return False

    def _down_message(self) -> str:
        now = self._clock()
        with self._lock:
            parts = [f"{s.url} ({s.why}; checked again in "
                     f"{max((s.down_until or now) - now, 0.0):.0f} s)" for s in self._servers]
        return (f"all {len(parts)} judge servers are out of rotation: " + "; ".join(parts)
                + ". Check that they run, or wait for the cool-down (GRM_STUDIO_API_COOLDOWN_S)")
