"""How many password checks the sign-in page runs, for whom, and how many at once.

`SignInThrottle.begin` is called before the password hash is checked, and
counts the attempt as a failure there and then, under one lock: racing
requests each see the others' attempts, so 30 parallel wrong passwords get
exactly `per_pair` checks, never 30. A right password takes its own attempt
back (`succeeded`); an error that is nobody's guess does too (`abandoned`).

Failures are counted per key over a sliding window (15 minutes):

- **name and address** (`per_pair`, 5): guessing one account from one place;
- **name** (`per_name`, 20): guessing one account from many places (rotating
  addresses gains nothing past 20);
- **address** (`per_address`, 50): spraying many names from one place.

Past any of its limits a key is refused, without a password check, until its
oldest failure leaves the window. Globally, at most `max_hashing` password
hashes run at once (argon2 takes ~64 MiB and a CPU core each); past that a
sign-in waits for a slot (`enter`: up to `busy_wait_s`, holding no thread)
and then is answered "busy, try again", so a flood neither grows the server's
memory nor takes its threads, and a burst of honest sign-ins just queues.

**No lockout of a right password by someone else.** The counts above are
what a stranger can fill: someone behind the same address as a user, or
anywhere, can make the user's name refused by guessing it. So a browser that
has signed in to a name before carries a device cookie (random, HttpOnly, kept
here for `device_days`), and sign-ins for that name from that browser are
counted on that device alone (`per_device`, 5): no one else's failures, from
the same address or any other, can refuse them. What remains, and is said
so: a first sign-in from a new browser (or after a restart, which forgets the
devices and the counts) can be held up while someone guesses that very name.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, ...]
MAX_DEVICES = 10_000  # remembered browsers; the oldest is forgotten first
_PRUNE_AT = 10_000  # keys held before the expired ones are dropped


@dataclass(frozen=True)
class Attempt:
    """A password check that `begin` allowed: it holds a hashing slot and is
    counted as a failure on `keys` until `succeeded` or `abandoned` says otherwise."""

    name: str  # as compared: stripped, case-folded
    keys: tuple[Key, ...]
    at: float


@dataclass(frozen=True)
class Refusal:
    """No password check now: `busy` (all hashing slots taken) or a key past its limit."""

    wait_s: float
    busy: bool = False


class SignInThrottle:
    """Counts sign-in attempts before their password check (see the module docstring).
    Kept in memory: a restart forgets it."""

    def __init__(
        self, *, per_pair: int = 5, per_name: int = 20, per_address: int = 50,
        per_device: int = 5, window_s: float = 900.0, max_hashing: int = 4,
        device_days: float = 30.0, busy_wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"pair": per_pair, "name": per_name, "address": per_address,
                        "device": per_device}
        self._window, self._clock = window_s, clock
        self.device_s, self.busy_wait_s = device_days * 86_400, busy_wait_s
        self._failures: dict[Key, deque[float]] = {}
        self._devices: OrderedDict[str, tuple[str, float]] = OrderedDict()  # digest: name, until
        self._slots = threading.BoundedSemaphore(max_hashing)
        self._lock = threading.Lock()

    def begin(self, name: str, address: str, device: str | None = None) -> Attempt | Refusal:
        """Reserve a password check for `name` from `address` (and this browser's
        device cookie, if any), or say why not."""
        who = name.strip().casefold()
        now = self._clock()
        with self._lock:
            keys = self._keys(who, address, device, now)
            wait = max((self._wait(key, now) for key in keys), default=0.0)
            if wait > 0:
                return Refusal(wait)
            if not self._slots.acquire(blocking=False):
                return Refusal(1.0, busy=True)
            if len(self._failures) > _PRUNE_AT:  # names sprayed at random: drop the expired
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
            return Attempt(who, keys, now)

    async def enter(self, name: str, address: str, device: str | None = None) -> Attempt | Refusal:
        """`begin`, waiting up to `busy_wait_s` while every hashing slot is taken."""
        deadline = time.monotonic() + self.busy_wait_s
        while True:
            outcome = self.begin(name, address, device)
            if not (isinstance(outcome, Refusal) and outcome.busy) or time.monotonic() >= deadline:
                return outcome
            await asyncio.sleep(0.02)

    def failed(self, attempt: Attempt) -> None:
        """The password was wrong: the attempt stays counted."""
        self._slots.release()

    def succeeded(self, attempt: Attempt, device: str | None = None) -> str:
        """The password was right: the attempt is taken back, the name-and-address
        (or device) count cleared; returns the device token for this browser
        (`device` if it is already this name's, else a new one)."""
        self._slots.release()
        now = self._clock()
        with self._lock:
            self._take_back(attempt)
            for key in attempt.keys:
                if key[0] in ("pair", "device"):
                    self._failures.pop(key, None)
            if device is not None and self._device_name(device, now) == attempt.name:
                return device
            token = secrets.token_urlsafe(32)
            self._devices[_digest(token)] = (attempt.name, now + self.device_s)
            while len(self._devices) > MAX_DEVICES:
                self._devices.popitem(last=False)
            return token

    def abandoned(self, attempt: Attempt) -> None:
        """The check did not happen (an error): the attempt is taken back."""
        self._slots.release()
        with self._lock:
            self._take_back(attempt)

    # --- under the lock ------------------------------------------------------
    def _keys(self, who: str, address: str, device: str | None, now: float) -> tuple[Key, ...]:
        if device is not None and self._device_name(device, now) == who:
            return (("device", _digest(device)),)
        return ("pair", who, address), ("name", who), ("address", address)

    def _device_name(self, device: str, now: float) -> str | None:
        known = self._devices.get(_digest(device))
        if known is None or known[1] <= now:
            return None
        return known[0]

    def _wait(self, key: Key, now: float) -> float:
        failures = self._recent(key, now)
        if len(failures) < self._limits[key[0]]:
            return 0.0
        return failures[0] + self._window - now

    def _take_back(self, attempt: Attempt) -> None:
        for key in attempt.keys:
            failures = self._failures.get(key)
            if failures is not None and attempt.at in failures:
                failures.remove(attempt.at)

    def _recent(self, key: Key, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
