"""Who talks to whom: a queue of waiting people, matched by shared interest or at random.

A person with interests waits up to ``fallback_after`` seconds for someone sharing one; after
that (or at once, without interests) they take anyone who is also open to a random match;
among those, the one who has been open to anyone longest comes first. ``can_pair`` vetoes a
pair (the same connection twice, or two people one of whom reported the other). Pure
bookkeeping: no I/O, and time comes in from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Match", "Matchmaker", "Waiter"]

Who = TypeVar("Who")


@dataclass(eq=False)
class Waiter(Generic[Who]):
    who: Who
    interests: frozenset[str]
    ticket: int = 0  # arrival order: lower waited longer
    random_ok: bool = field(init=False)

    def __post_init__(self) -> None:
        self.random_ok = not self.interests


@dataclass(frozen=True)
class Match(Generic[Who]):
    first: Who  # the one who waited longer
    second: Who
    shared: tuple[str, ...]


class Matchmaker(Generic[Who]):
    def __init__(self, can_pair: Callable[[Who, Who], bool]) -> None:
        self._can_pair = can_pair
        # Insertion-ordered dicts: the longest-waiting candidate is found first.
        self._waiting: dict[int, Waiter[Who]] = {}
        self._by_interest: dict[str, dict[int, Waiter[Who]]] = {}
        self._random: dict[int, Waiter[Who]] = {}
        self._tickets = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, who: Who) -> bool:
        return id(who) in self._waiting

    def join(self, who: Who, interests: Iterable[str]) -> Match[Who] | None:
        """Pair ``who`` now if someone fits, else queue them; ``who`` must not be waiting."""
        if id(who) in self._waiting:
            raise ValueError("already waiting")
        waiter = Waiter(who, frozenset(interests))
        partner = self._find_by_interest(waiter) or self._find_random(waiter)
        if partner is not None:
            return self._pair(partner, waiter)
        self._add(waiter)
        return None

    def fall_back(self, who: Who) -> Match[Who] | None:
        """``who`` has waited long enough for their interests: open them to anyone."""
        waiter = self._waiting.get(id(who))
        if waiter is None or waiter.random_ok:
            return None
        waiter.random_ok = True
        partner = self._find_random(waiter)
        if partner is not None:
            self.leave(who)
            return self._pair(partner, waiter)
        self._random[id(who)] = waiter
        return None

    def leave(self, who: Who) -> bool:
        """Take ``who`` out of the queue; False if they were not in it."""
        waiter = self._waiting.pop(id(who), None)
        if waiter is None:
            return False
        self._random.pop(id(who), None)
        for interest in waiter.interests:
            bucket = self._by_interest.get(interest)
            if bucket is not None:
                bucket.pop(id(who), None)
                if not bucket:
                    del self._by_interest[interest]
        return True

    def _find_by_interest(self, waiter: Waiter[Who]) -> Waiter[Who] | None:
        best: Waiter[Who] | None = None
        for interest in waiter.interests:
            for candidate in self._by_interest.get(interest, {}).values():
                if best is not None and candidate.ticket > best.ticket:
                    break  # this bucket holds no one who waited longer than ``best``
                if self._can_pair(candidate.who, waiter.who):
                    best = candidate
                    break  # later entries of this bucket waited less
        return best

    def _find_random(self, waiter: Waiter[Who]) -> Waiter[Who] | None:
        if not waiter.random_ok:
            return None
        for candidate in self._random.values():
            if self._can_pair(candidate.who, waiter.who):
                return candidate
        return None

    def _pair(self, partner: Waiter[Who], waiter: Waiter[Who]) -> Match[Who]:
        self.leave(partner.who)
        shared = tuple(sorted(partner.interests & waiter.interests))
        if 0 < waiter.ticket < partner.ticket:  # a fallen-back waiter can have waited longer
            return Match(waiter.who, partner.who, shared)
        return Match(partner.who, waiter.who, shared)

    def _add(self, waiter: Waiter[Who]) -> None:
        key = id(waiter.who)
        self._tickets += 1
        waiter.ticket = self._tickets
        self._waiting[key] = waiter
        for interest in waiter.interests:
            self._by_interest.setdefault(interest, {})[key] = waiter
        if waiter.random_ok:
            self._random[key] = waiter
