"""The matchmaker: random and interest pairing, fall-back, vetoes and leaving the queue."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from logwarden.chat.pairing import Match, Matchmaker


class Person:
    """A connection stand-in: identity is what the matchmaker keys on."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Person({self.name!r})"


class Blocklist:
    """A ``can_pair`` that vetoes listed pairs (either order) and records every call."""

    def __init__(self, *pairs: tuple[Person, Person]) -> None:
        self.blocked = {frozenset(pair) for pair in pairs}
        self.calls: list[tuple[Person, Person]] = []

    def __call__(self, a: Person, b: Person) -> bool:
        self.calls.append((a, b))
        return frozenset((a, b)) not in self.blocked


def people(*names: str) -> list[Person]:
    return [Person(name) for name in names]


def matchmaker(*blocked: tuple[Person, Person]) -> Matchmaker[Person]:
    return Matchmaker(Blocklist(*blocked))


class TestRandomPairing:
    def test_two_random_joiners_are_paired(self) -> None:
        """The second person without interests is paired with the first."""
        a, b = people("a", "b")
        mm = matchmaker()
        assert mm.join(a, []) is None
        assert mm.join(b, []) == Match(a, b, ())
        assert len(mm) == 0

    def test_first_is_the_one_who_waited(self) -> None:
        """In a match, ``first`` is the person who was already waiting."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, [])
        match = mm.join(b, [])
        assert match is not None
        assert (match.first, match.second) == (a, b)

    def test_lone_joiner_waits(self) -> None:
        """Someone joining an empty queue waits and is in the queue."""
        (a,) = people("a")
        mm = matchmaker()
        assert mm.join(a, []) is None
        assert a in mm
        assert len(mm) == 1

    def test_third_joiner_waits_after_a_pair(self) -> None:
        """After a pair is made, the next person waits rather than joining the old pair."""
        a, b, c = people("a", "b", "c")
        mm = matchmaker()
        mm.join(a, [])
        mm.join(b, [])
        assert mm.join(c, []) is None
        assert c in mm
        assert a not in mm
        assert b not in mm


class TestNeverWithItself:
    def test_can_pair_is_never_asked_about_the_same_person(self) -> None:
        """Even with a veto that allows everything, no one is offered to themselves."""
        a, b, c = people("a", "b", "c")
        veto = Blocklist()
        mm = Matchmaker(veto)
        mm.join(a, ["chess"])
        mm.fall_back(a)
        mm.join(b, ["jazz"])
        mm.fall_back(b)  # pairs with a
        mm.join(c, ["chess"])
        mm.fall_back(c)
        assert veto.calls
        assert all(x is not y for x, y in veto.calls)

    def test_falling_back_alone_does_not_pair_with_itself(self) -> None:
        """A waiter who falls back with no one else waiting keeps waiting."""
        (a,) = people("a")
        mm: Matchmaker[Person] = Matchmaker(lambda x, y: True)
        mm.join(a, ["chess"])
        assert mm.fall_back(a) is None
        assert a in mm

    def test_joining_twice_is_refused(self) -> None:
        """Someone already waiting cannot join again (and so can never meet themselves)."""
        (a,) = people("a")
        mm: Matchmaker[Person] = Matchmaker(lambda x, y: True)
        mm.join(a, ["chess"])
        with pytest.raises(ValueError, match="already waiting"):
            mm.join(a, ["chess"])
        assert len(mm) == 1


class TestInterestPairing:
    def test_shared_interest_pairs(self) -> None:
        """Two people sharing an interest are paired, and the shared interest is reported."""
        a, b = people("a", "b")
        mm = matchmaker()
        assert mm.join(a, ["chess", "jazz"]) is None
        assert mm.join(b, ["chess", "hiking"]) == Match(a, b, ("chess",))

    def test_shared_interests_are_sorted(self) -> None:
        """Shared interests are reported in sorted order, whatever order they were given in."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["zither", "go", "chess", "jazz", "opera"])
        match = mm.join(b, ["jazz", "zither", "chess", "go", "poker"])
        assert match is not None
        assert match.shared == ("chess", "go", "jazz", "zither")

    def test_no_shared_interest_both_wait(self) -> None:
        """People with interests but none in common both wait."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["chess"])
        assert mm.join(b, ["jazz"]) is None
        assert len(mm) == 2

    def test_interest_match_is_preferred(self) -> None:
        """A joiner with interests is paired with someone sharing one, not a random waiter."""
        r, a, c = people("random", "a", "c")
        mm = matchmaker()
        mm.join(r, [])  # waited longest, open to anyone
        mm.join(a, ["chess"])
        assert mm.join(c, ["chess"]) == Match(a, c, ("chess",))
        assert r in mm

    def test_interest_match_after_fall_back(self) -> None:
        """A waiter who fell back still meets a newcomer sharing an interest, reported as shared."""
        a, c = people("a", "c")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.fall_back(a)
        assert mm.join(c, ["chess"]) == Match(a, c, ("chess",))


class TestLongestWaiting:
    def test_longest_waiting_with_the_same_interest(self) -> None:
        """Of several waiters sharing the interest, the one who waited longest is chosen."""
        a, b, c, d = people("a", "b", "c", "d")
        mm = matchmaker((a, b), (a, c), (b, c))  # so that all three wait
        mm.join(a, ["chess"])
        mm.join(b, ["chess"])
        mm.join(c, ["chess"])
        assert len(mm) == 3
        assert mm.join(d, ["chess"]) == Match(a, d, ("chess",))

    def test_longest_waiting_across_interests(self) -> None:
        """Of waiters sharing different interests, the one who waited longest is chosen."""
        names = [f"topic{i}" for i in range(8)]
        for oldest in range(8):
            mm = matchmaker()
            waiters = people(*names)
            order = [oldest] + [i for i in range(8) if i != oldest]
            for i in order:  # waiter i is interested in topic i only
                mm.join(waiters[i], [names[i]])
            match = mm.join(Person("joiner"), names)
            assert match is not None
            assert match.first is waiters[oldest]
            assert match.shared == (names[oldest],)

    def test_longest_waiting_random(self) -> None:
        """Of several random waiters, the one who waited longest is chosen."""
        a, b, c, d = people("a", "b", "c", "d")
        mm = matchmaker((a, b), (a, c), (b, c))  # so that all three wait
        for who in (a, b, c):
            mm.join(who, [])
        assert len(mm) == 3
        assert mm.join(d, []) == Match(a, d, ())


class TestFallBack:
    def test_interests_do_not_take_a_random_waiter(self) -> None:
        """Someone with interests is not paired with a random-only waiter at join."""
        r, a = people("random", "a")
        mm = matchmaker()
        mm.join(r, [])
        assert mm.join(a, ["chess"]) is None
        assert len(mm) == 2

    def test_random_joiner_does_not_take_an_interest_waiter(self) -> None:
        """A random joiner is not paired with someone still waiting for their interests."""
        a, r = people("a", "random")
        mm = matchmaker()
        mm.join(a, ["chess"])
        assert mm.join(r, []) is None
        assert len(mm) == 2

    def test_fall_back_pairs_with_a_random_waiter(self) -> None:
        """After fall_back, the interest waiter is paired with a random waiter."""
        r, a = people("random", "a")
        mm = matchmaker()
        mm.join(r, [])
        mm.join(a, ["chess"])
        match = mm.fall_back(a)
        assert match is not None
        assert {match.first, match.second} == {r, a}
        assert match.shared == ()
        assert len(mm) == 0

    def test_fall_back_pairs_with_someone_else_who_fell_back(self) -> None:
        """Two interest waiters without a common interest meet once both have fallen back."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.join(b, ["jazz"])
        assert mm.fall_back(a) is None
        match = mm.fall_back(b)
        assert match is not None
        assert {match.first, match.second} == {a, b}
        assert match.shared == ()

    def test_after_fall_back_a_random_joiner_takes_them(self) -> None:
        """Once fallen back with no one around, the waiter is paired with the next random joiner."""
        a, r = people("a", "random")
        mm = matchmaker()
        mm.join(a, ["chess"])
        assert mm.fall_back(a) is None
        assert mm.join(r, []) == Match(a, r, ())

    def test_after_fall_back_an_interest_joiner_without_overlap_waits(self) -> None:
        """A newcomer with other interests, not yet fallen back, does not take a fallen-back one."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.fall_back(a)
        assert mm.join(b, ["jazz"]) is None

    def test_fall_back_of_someone_not_waiting(self) -> None:
        """fall_back for someone not in the queue does nothing."""
        a, r = people("a", "random")
        mm = matchmaker()
        mm.join(r, [])
        assert mm.fall_back(a) is None
        assert a not in mm
        assert len(mm) == 1

    def test_fall_back_without_interests_does_nothing(self) -> None:
        """fall_back for a random waiter (already open to anyone) does nothing."""
        (r,) = people("random")
        mm = matchmaker()
        mm.join(r, [])
        assert mm.fall_back(r) is None
        assert r in mm

    def test_fall_back_twice(self) -> None:
        """A second fall_back for the same waiter does nothing."""
        (a,) = people("a")
        mm = matchmaker()
        mm.join(a, ["chess"])
        assert mm.fall_back(a) is None
        assert mm.fall_back(a) is None
        assert len(mm) == 1

    def test_first_is_who_waited_longer_after_fall_back(self) -> None:
        """When fall_back makes the match, ``first`` is still the person who waited longer."""
        a, r = people("a", "random")
        mm = matchmaker()
        mm.join(a, ["chess"])  # waits first
        mm.join(r, [])
        match = mm.fall_back(a)
        assert match is not None
        assert (match.first, match.second) == (a, r)


class TestVeto:
    def test_blocked_interest_candidate_is_skipped(self) -> None:
        """A vetoed interest candidate is skipped and the next one sharing an interest is used."""
        a, b, c = people("a", "b", "c")
        mm = matchmaker((a, b), (a, c))
        mm.join(a, ["chess"])
        mm.join(b, ["chess"])
        assert mm.join(c, ["chess"]) == Match(b, c, ("chess",))
        assert a in mm

    def test_blocked_random_candidate_is_skipped(self) -> None:
        """A vetoed random candidate is skipped and the next random waiter is used."""
        a, b, c = people("a", "b", "c")
        mm = matchmaker((a, b), (a, c))
        mm.join(a, [])
        mm.join(b, [])
        assert mm.join(c, []) == Match(b, c, ())
        assert a in mm

    def test_blocked_in_every_bucket(self) -> None:
        """A candidate vetoed under one shared interest is not chosen under another."""
        a, b, c = people("a", "b", "c")
        mm = matchmaker((a, b), (a, c))
        mm.join(a, ["chess", "jazz"])
        mm.join(b, ["jazz"])
        assert mm.join(c, ["chess", "jazz"]) == Match(b, c, ("jazz",))

    def test_only_blocked_candidates_means_waiting(self) -> None:
        """When every candidate is vetoed, the joiner waits."""
        a, b = people("a", "b")
        mm = matchmaker((a, b))
        mm.join(a, [])
        assert mm.join(b, []) is None
        assert len(mm) == 2

    def test_veto_applies_on_fall_back(self) -> None:
        """fall_back skips vetoed random waiters too."""
        a, b, r = people("a", "b", "r")
        mm = matchmaker((a, b))
        mm.join(b, [])
        mm.join(a, ["chess"])
        assert mm.fall_back(a) is None
        assert mm.join(r, []) is not None  # takes b, the longest waiting
        assert a in mm


class TestLeave:
    def test_leave_removes_from_queue(self) -> None:
        """leave takes the waiter out: not in the queue, not counted."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.join(b, [])
        assert mm.leave(a) is True
        assert a not in mm
        assert len(mm) == 1

    def test_leave_twice(self) -> None:
        """leave returns False for someone not (or no longer) waiting."""
        a, stranger = people("a", "stranger")
        mm = matchmaker()
        mm.join(a, [])
        assert mm.leave(a) is True
        assert mm.leave(a) is False
        assert mm.leave(stranger) is False

    def test_left_interest_waiter_is_not_matched(self) -> None:
        """Someone who left is not found by a newcomer sharing their interest."""
        a, c = people("a", "c")
        mm = matchmaker()
        mm.join(a, ["chess", "jazz"])
        mm.leave(a)
        assert mm.join(c, ["jazz"]) is None

    def test_left_random_waiter_is_not_matched(self) -> None:
        """Someone who left is not found by a random newcomer."""
        a, r = people("a", "random")
        mm = matchmaker()
        mm.join(a, [])
        mm.leave(a)
        assert mm.join(r, []) is None

    def test_left_fallen_back_waiter_is_not_matched(self) -> None:
        """Someone who fell back and then left is found neither by interest nor at random."""
        a, c, r = people("a", "c", "random")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.fall_back(a)
        mm.leave(a)
        assert mm.join(c, ["chess"]) is None
        assert mm.join(r, []) is None

    def test_rejoin_after_leave(self) -> None:
        """Someone who left can join again and is paired like anyone else."""
        a, b = people("a", "b")
        mm = matchmaker()
        mm.join(a, ["chess"])
        mm.leave(a)
        mm.join(a, ["jazz"])
        assert mm.join(b, ["chess"]) is None
        mm.leave(b)
        assert mm.join(b, ["jazz"]) == Match(a, b, ("jazz",))


# -- a state machine against a model ----------------------------------------------------------

_TOPICS = ("chess", "jazz", "go")


@dataclass
class Waiting:
    """What the model knows of one waiter."""

    interests: frozenset[str]
    random_ok: bool
    arrival: int


class MatchmakerMachine(RuleBasedStateMachine):
    """Random join/leave/fall_back/block sequences, checked against a model of the queue."""

    people = Bundle("people")

    def __init__(self) -> None:
        super().__init__()
        self.blocked: set[frozenset[Person]] = set()
        self.mm: Matchmaker[Person] = Matchmaker(self._can_pair)
        self.waiting: dict[Person, Waiting] = {}
        self.everyone: list[Person] = []
        self.arrivals = 0
        self.self_offers = 0

    def _can_pair(self, a: Person, b: Person) -> bool:
        # Deliberately no self check: the matchmaker itself must never offer a person to
        # themselves; ``self_offers`` counts it if it does.
        if a is b:
            self.self_offers += 1
        return frozenset((a, b)) not in self.blocked

    def _allowed(self, a: Person, b: Person) -> bool:
        return a is not b and frozenset((a, b)) not in self.blocked

    @initialize(target=people, n=st.integers(2, 7))
    def make_people(self, n: int) -> object:
        self.everyone = [Person(f"p{i}") for i in range(n)]
        return multiple(*self.everyone)

    @rule(a=people, b=people)
    def block(self, a: Person, b: Person) -> None:
        self.blocked.add(frozenset((a, b)))

    @rule(who=people, interests=st.sets(st.sampled_from(_TOPICS), max_size=2))
    def join(self, who: Person, interests: set[str]) -> None:
        if who in self.waiting:
            return  # the server answers already_joined; the matchmaker never sees it
        match = self.mm.join(who, interests)
        if match is None:
            self.arrivals += 1
            self.waiting[who] = Waiting(frozenset(interests), not interests, self.arrivals)
            return
        partner = self._take_match(match, who)
        if interests:
            sharing = [
                w.arrival
                for p, w in self.waiting.items()
                if w.interests & interests and self._allowed(p, who)
            ]
            assert partner.interests & interests, "interests at join need a shared interest"
            assert partner.arrival < min(sharing, default=partner.arrival + 1), (
                "the longest-waiting sharer is chosen"
            )
        else:
            assert partner.random_ok, "a random joiner only takes someone open to anyone"
        assert match.shared == tuple(sorted(partner.interests & interests))

    @rule(who=people)
    def fall_back(self, who: Person) -> None:
        state = self.waiting.get(who)
        match = self.mm.fall_back(who)
        if state is None or state.random_ok:
            assert match is None
            return
        if match is None:
            state.random_ok = True
            return
        del self.waiting[who]
        partner = self._take_match(match, who)
        assert partner.random_ok, "fall_back only takes someone open to anyone"

    @rule(who=people)
    def leave(self, who: Person) -> None:
        assert self.mm.leave(who) is (self.waiting.pop(who, None) is not None)

    def _take_match(self, match: Match[Person], who: Person) -> Waiting:
        """Check a match ``who`` just made and take the partner out of the model."""
        assert match.first is not match.second, "a match holds the same person twice"
        assert who in (match.first, match.second)
        partner = match.second if match.first is who else match.first
        assert self._allowed(match.first, match.second), "a vetoed pair was matched"
        assert partner in self.waiting, "the partner was not waiting"
        assert who not in self.mm, "a matched person is still waiting"
        assert partner not in self.mm, "a matched person is still waiting"
        return self.waiting.pop(partner)

    @invariant()
    def queue_agrees_with_model(self) -> None:
        assert len(self.mm) == len(self.waiting)
        for who in self.everyone:
            assert (who in self.mm) == (who in self.waiting), who

    @invariant()
    def never_offered_to_themselves(self) -> None:
        assert self.self_offers == 0

    @invariant()
    def no_missed_match(self) -> None:
        waiting = list(self.waiting.items())
        for i, (a, wa) in enumerate(waiting):
            for b, wb in waiting[i + 1 :]:
                if not self._allowed(a, b):
                    continue
                assert not (wa.interests & wb.interests), f"{a} and {b} share an interest"
                assert not (wa.random_ok and wb.random_ok), f"{a} and {b} are both open to anyone"


MatchmakerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)


class TestMatchmakerMachine(MatchmakerMachine.TestCase):  # type: ignore[misc,valid-type]
    """Random operation sequences never double-book, self-pair, pair a vetoed pair or miss one."""
