"""Campaigns at ingest: evaluate a request's events and apply the decisions in its transaction.

``apply_campaigns`` runs inside ``IngestEvents.apply`` (so inside the writer's batch
transaction, after identity resolution). It loads the customer's one row of totals and
campaign progress, runs the pure engine (``rules.engine``) event
by event, and writes what it decided: ledger credits, badges, progress, tier changes and the
activity log. Everything commits with the events or not at all, and a retried request
(idempotency key) never gets here twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from kudos import errors
from kudos.domain.identity import customer_lock_key
from kudos.domain.model import utc_hour
from kudos.rules.engine import (
    Achievement,
    CompiledProgram,
    Facts,
    State,
    bounded_total,
    compile_program,
    conform,
    could_count,
    evaluate_event,
    number,
    standing,
)
from kudos.rules.schema import EMPTY_PROGRAM, MAX_TOTAL, Program, Tier, event_names, load_program
from kudos.storage import analytics as analytics_rows
from kudos.storage import burn as burn_rows
from kudos.storage import profiles, programs
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import CustomerTotals, Entry
from kudos.webhooks import gameball, outbox

log = logging.getLogger("kudos.rewards")

StoredEvent = tuple[int, str, dict[str, Any]]  # event id, name, metadata
MAX_TIER_STEPS = 20
MAX_LOGGED_PROBLEMS = 20  # of a program that cannot be loaded


@dataclass(frozen=True, slots=True)
class UnloadableProgram:
    """A stored program this version cannot load (stored by an older version, or written
    to the store by hand): the event names its raw document mentions, when they can be read
    (``None``: any event may concern it)."""

    version: int
    events: frozenset[str] | None

    def concerns(self, names: Iterable[str]) -> bool:
        """Whether events with these names would need the program."""
        return self.events is None or not self.events.isdisjoint(names)


Loaded = CompiledProgram | UnloadableProgram


@dataclass
class ProgramCache:
    """Programs by account, compiled once per version, refreshed when a newer version is in
    force; a version that cannot be loaded is remembered as such (logged once, never parsed
    again), and fails only the requests it concerns.

    The version in force is read once per account and transaction, so a program applied by
    any process (the API, the CLI, another server) takes effect with the next batch.
    """

    # account → (the stamp of the program in force: version and time applied, as loaded)
    _programs: dict[int, tuple[tuple[int, str], Loaded]] = field(default_factory=dict)

    def lookup(self, tx: Tx, account_id: int) -> Loaded | None:
        """The account's program as loaded, or ``None`` when none was ever applied. Never
        raises because of what the program holds (the store's own errors propagate)."""
        stamp = tx.once(("program-stamp", account_id), programs.stamp, tx, account_id)
        if stamp is None:
            return None
        found = self._programs.get(account_id)
        if found is not None and found[0] == stamp:
            return found[1]
        stored = programs.current(tx, account_id)
        if stored is None:  # deleted since the stamp was read: nothing in force
            return None
        loaded = _loaded(account_id, stored[0], stored[1])
        self._programs[account_id] = ((stored[0], stored[2]), loaded)
        return loaded

    def prime(self, account_id: int, compiled: CompiledProgram, applied_at: str) -> None:
        """Keep a program this process just applied (committed), compiled off the event
        loop: the next batch finds it instead of loading it again."""
        found = self._programs.get(account_id)
        if found is None or found[0][0] <= compiled.version:
            self._programs[account_id] = ((compiled.version, applied_at), compiled)

    def runs(self, tx: Tx, account_id: int) -> bool:
        """Whether a program that loads is in force (never raises because of the program)."""
        return isinstance(self.lookup(tx, account_id), CompiledProgram)

    def get(self, tx: Tx, account_id: int) -> CompiledProgram | None:
        """The account's compiled program, or ``None`` when none was ever applied;
        ``ProgramUnavailable`` when the program in force cannot be loaded."""
        found = self.lookup(tx, account_id)
        if isinstance(found, UnloadableProgram):
            raise errors.ProgramUnavailable()
        return found

    def for_events(self, tx: Tx, account_id: int, names: Iterable[str]) -> CompiledProgram | None:
        """The program to run on events with these names: ``get``, except that a program
        that cannot be loaded but mentions none of the names lets them through unrewarded."""
        found = self.lookup(tx, account_id)
        if isinstance(found, UnloadableProgram):
            if found.concerns(names):
                raise errors.ProgramUnavailable()
            return None
        return found


def _loaded(account_id: int, version: int, document: Any) -> Loaded:
    """A stored document compiled, or what can be told of it when it cannot be loaded."""
    try:
        return compile_program(load_program(document), version)
    except errors.ProgramInvalid as exc:
        problems = exc.problems
    except Exception as exc:  # pure code on a stored document: any failure means unloadable
        problems = [f"(document): {type(exc).__name__}: {exc}"]
    log.error(
        "account %d: program version %d cannot be loaded; the requests it concerns answer"
        " 5001 until a valid program is applied: %s",
        account_id,
        version,
        "; ".join(problems[:MAX_LOGGED_PROBLEMS]),
    )
    return UnloadableProgram(version, event_names(document))


def load_compiled(tx: Tx, account_id: int) -> CompiledProgram | None:
    """The program in force, read and compiled now (``None`` before the first apply;
    ``ProgramUnavailable`` when it cannot be loaded)."""
    found = programs.current(tx, account_id)
    if found is None:
        return None
    try:
        return compile_program(load_program(found[1]), found[0])
    except Exception:  # any failure of the pure loading (the cache logs why)
        raise errors.ProgramUnavailable() from None


def load_compiled_or_none(tx: Tx, account_id: int) -> CompiledProgram | None:
    """``load_compiled``, with ``None`` for a program that cannot be loaded (housekeeping
    must go on: it logs nothing, the requests that need the program say why)."""
    try:
        return load_compiled(tx, account_id)
    except errors.ProgramUnavailable:
        return None


def apply_campaigns(
    tx: Tx,
    compiled: CompiledProgram,
    *,
    account_id: int,
    profile_id: int,
    customer_id: str,
    events: Sequence[StoredEvent],
    now: str,
) -> None:
    """Evaluate ``events`` for the profile and write every decision (see the module doc).

    Events that no rule mentions or whose conditions none holds, and that the tiering does
    not count, cost nothing: the customer's reward state is not even read.
    """
    tiering_event = compiled.program.tiering.event if compiled.program.tiers else None
    if not any(
        name == tiering_event or could_count(compiled, name, metadata)
        for _, name, metadata in events
    ):
        return
    totals = reward_rows.totals(tx, account_id, profile_id)
    conform(compiled, totals.progress)
    moment = _moment(now)
    day = now[:10]  # stored times are UTC ISO-8601
    writer = Decisions(tx, compiled, totals, customer_id=customer_id, now=now)
    before = (totals.points_balance, totals.tier_order)
    for event in events:
        _, name, metadata = event
        facts = Facts(now=moment, tier_order=totals.tier_order, day=day)
        result = evaluate_event(compiled, totals.progress, name, metadata, facts)
        for achievement in result.achievements:
            writer.reward(achievement, event)
        for campaign_id in result.capped:
            writer.tally_campaign(campaign_id, cap_hits=1)
        _track_tiering(compiled.program, totals, name, metadata)
        writer.retier()
    reward_rows.save_totals(tx, totals, now)
    if (totals.points_balance, totals.tier_order) != before:
        writer.profile_updated()


class Decisions:
    """Writes the engine's decisions (and the burn side's movements) for one customer,
    keeping their totals current."""

    def __init__(
        self,
        tx: Tx,
        compiled: CompiledProgram,
        totals: CustomerTotals,
        *,
        customer_id: str,
        now: str,
    ):
        self.tx = tx
        self.compiled = compiled
        self.totals = totals
        self.customer_id = customer_id
        self.now = now
        days = compiled.program.points_expiry_days
        # When a credit made now expires (the program's ``pointsExpiryDays``).
        self.expires_at = None if days is None else expiry_time(now, days)
        self.announces_rewards = outbox.wants(tx, totals.account_id, outbox.CAMPAIGN_REWARDED)
        self._tiered: tuple[float, int | None] | None = None  # what ``retier`` last settled

    def reward(self, achievement: Achievement, event: StoredEvent) -> None:
        """One history row: the activity, and the ledger credit when it earns points."""
        campaign = achievement.campaign.spec
        entry = Entry(
            "CampaignRewarded",
            reason=campaign.name,
            campaign_id=campaign.id,
            campaign_version=self.compiled.version,
            event_id=event[0],
            times=achievement.times,
            score=achievement.score,
            badge=achievement.badge,
        )
        achievement.points = self._credit(entry, achievement.points, kind="Reward")
        self.tally_campaign(campaign.id, achievements=achievement.times, points=achievement.points)
        if achievement.score:
            self.totals.score = min(self.totals.score + achievement.score, MAX_TOTAL)
        if achievement.badge:
            reward_rows.award_badge(
                self.tx, self.totals, achievement.badge, campaign_id=campaign.id, now=self.now
            )
        self._announce_reward(achievement, event)

    def tally_campaign(
        self, campaign_id: str, *, achievements: int = 0, points: int = 0, cap_hits: int = 0
    ) -> None:
        """Count a campaign's outcome into its hourly flows (analytics)."""
        self.tx.tally(
            analytics_rows.ADD_CAMPAIGN,
            (self.totals.account_id, campaign_id, utc_hour(self.now), self.tx.db.shard),
            achievements,
            points,
            cap_hits,
        )

    def _announce_reward(self, achievement: Achievement, event: StoredEvent) -> None:
        """``campaign.rewarded``, and the campaign's notification if it has one."""
        campaign = achievement.campaign.spec
        account_id = self.totals.account_id
        if self.announces_rewards:
            self.announce(outbox.CAMPAIGN_REWARDED, _rewarded(achievement, event, self.compiled))
        notice = campaign.notification
        if notice is not None and outbox.wants(self.tx, account_id, outbox.NOTIFICATION_PUSH):
            payload = gameball.notification_push(
                self.tx,
                account_id,
                customer_id=self.customer_id,
                profile_id=self.totals.profile_id,
                title=notice.title,
                body=notice.body,
                now=self.now,
            )
            outbox.emit(self.tx, account_id, outbox.NOTIFICATION_PUSH, payload, now=self.now)

    def announce(self, topic: str, data: dict[str, Any]) -> None:
        """Emit one of kudos' topics about this customer."""
        data = {"customerId": self.customer_id, "gbCustomerId": self.totals.profile_id, **data}
        outbox.emit(self.tx, self.totals.account_id, topic, data, now=self.now)

    def profile_updated(self) -> None:
        """Gameball's ``customer.profile.updated`` (call after the totals are saved)."""
        totals = self.totals
        gameball.announce_profile(
            self.tx,
            totals.account_id,
            self.customer_id,
            totals.profile_id,
            now=self.now,
            totals=totals,
        )

    def debit(
        self, points: int, *, reason: str, entry: Entry | None = None, reserved: int = 0
    ) -> None:
        """Take points from the credits that expire first (``InsufficientPoints`` if the
        available balance, less the ``reserved`` points that others hold, is short: nothing
        is written then); ``entry`` says what the debit is (a manual one by default)."""
        self.tx.flush_staged()  # credits staged earlier in this batch must be consumable
        credits = reward_rows.consumable_credits(self.tx, self.totals, self.now)
        if sum(remaining for _, remaining in credits) - reserved < points:
            raise errors.InsufficientPoints(
                f"Insufficient balance: {points:,} points needed, fewer available."
            )
        self._take(credits, points)
        entry = entry or Entry("Manual", kind="Manual", reason=reason)
        _record(self.tx, self.totals, entry, -points, self.now)

    def take_up_to(self, points: int, entry: Entry) -> int:
        """Debit as many of ``points`` as the spendable credits hold (a clawback may find
        them spent); return how many were taken (none: nothing is written)."""
        self.tx.flush_staged()
        credits = reward_rows.consumable_credits(self.tx, self.totals, self.now)
        taken = min(points, sum(remaining for _, remaining in credits))
        if taken > 0:
            self._take(credits, taken)
            _record(self.tx, self.totals, entry, -taken, self.now)
        return taken

    def _take(self, credits: list[tuple[int, int]], points: int) -> None:
        left = points
        for credit_id, remaining in credits:
            taken = min(left, remaining)
            reward_rows.consume(self.tx, credit_id, taken)
            left -= taken
            if not left:
                break

    def credit(
        self,
        points: int,
        *,
        reason: str,
        entry: Entry | None = None,
        kind: str = "Manual",
        pending_until: str | None = None,
    ) -> int:
        """A credit (it expires like campaign points); ``InvalidValue`` when it would take the
        customer past the ceiling (nothing is written then). With ``pending_until`` the
        points stay pending (outside the balance) until then. Returns the points credited."""
        if points > headroom(self.totals):
            raise errors.InvalidValue(
                f"Invalid value: 'points' would take the customer's points past {MAX_TOTAL:,};"
                f" at most {headroom(self.totals):,} can be credited."
            )
        entry = entry or Entry("Manual", reason=reason)
        if pending_until is None:
            return self._credit(entry, points, kind=kind)
        entry.kind, entry.direction, entry.points = kind, "+", points
        entry.pending_until = pending_until
        days = self.compiled.program.points_expiry_days
        entry.expires_at = None if days is None else expiry_time(pending_until, days)
        reward_rows.add_entry(self.tx, self.totals, entry, self.now)
        return points

    def _credit(self, entry: Entry, points: int, *, kind: str) -> int:
        """Write ``entry``, crediting ``points`` cut to what the ceiling leaves (none: the
        entry is an activity alone); return the points credited."""
        points = min(points, headroom(self.totals))
        if points <= 0:
            reward_rows.add_entry(self.tx, self.totals, entry, self.now)
            return 0
        entry.kind = kind
        entry.expires_at = entry.expires_at or self.expires_at
        _record(self.tx, self.totals, entry, points, self.now)
        self.totals.points_earned += points
        return points

    def retier(self) -> None:
        """Move the customer to the tier their progress reaches; an entry reward may move
        them again (bounded)."""
        program = self.compiled.program
        if not program.tiers:
            return
        for _ in range(MAX_TIER_STEPS):
            progress = tiering_progress(program, self.totals)
            current = self.totals.tier_order
            if self._tiered == (progress, current):
                return  # nothing the tier depends on moved since it was settled
            target = tier_for(program, progress)
            order = target.order if target is not None else None
            if order == current:
                self._tiered = (progress, current)
                return
            upgraded = (order or 0) > (current or 0)
            self.totals.tier_order = order
            entry = Entry(
                "TierUpgraded" if upgraded else "TierDowngraded",
                reason=target.name if target is not None else None,
                data={
                    "tierName": target.name if target else None,
                    "tierOrder": order,
                    "previousTierOrder": current,
                },
            )
            entry_points = target.entry_reward_points if upgraded and target is not None else 0
            self._credit(entry, entry_points, kind="TierEntry")
            self._announce_tier(target, current, upgraded=upgraded)

    def _announce_tier(self, target: Tier | None, previous: int | None, *, upgraded: bool) -> None:
        if not outbox.wants(self.tx, self.totals.account_id, outbox.TIER_CHANGED):
            return
        names = {tier.order: tier.name for tier in self.compiled.program.tiers}
        data = {
            "direction": "upgraded" if upgraded else "downgraded",
            "tier": None if target is None else {"order": target.order, "name": target.name},
            "previousTier": None
            if previous is None
            else {"order": previous, "name": names.get(previous)},
        }
        self.announce(outbox.TIER_CHANGED, data)


def _rewarded(
    achievement: Achievement, event: StoredEvent, compiled: CompiledProgram
) -> dict[str, Any]:
    """The ``campaign.rewarded`` data of one achievement."""
    campaign = achievement.campaign.spec
    event_id, name, metadata = event
    return {
        "campaignId": campaign.id,
        "campaignName": campaign.name,
        "campaignVersion": compiled.version,
        "points": achievement.points,
        "score": achievement.score,
        "badge": achievement.badge,
        "timesAchieved": achievement.times,
        "event": {"id": event_id, "name": name, "metadata": metadata},
    }


def headroom(totals: CustomerTotals) -> int:
    """The points a customer can still be credited: balance and points earned never pass
    ``MAX_TOTAL`` (every store and JSON client holds them exactly)."""
    return max(0, MAX_TOTAL - max(totals.points_earned, totals.points_balance))


def tiering_progress(program: Program, totals: CustomerTotals) -> float:
    """The number the tiering method compares with each tier's ``minProgress``."""
    method = program.tiering.method
    if method == "points":
        return float(totals.points_earned)
    if method == "score":
        return float(totals.score)
    if method == "spend":
        return totals.spend
    return float(totals.event_count)


def tier_for(program: Program, progress: float) -> Tier | None:
    """The highest tier whose ``minProgress`` the progress reaches."""
    best: Tier | None = None
    for tier in program.tiers:  # a loop, not max() over a list: this runs for every event
        if tier.min_progress <= progress and (best is None or tier.order > best.order):
            best = tier
    return best


def _track_tiering(program: Program, totals: CustomerTotals, name: str, metadata: Any) -> None:
    tiering = program.tiering
    if tiering.event != name:
        return
    if tiering.method == "eventCount":
        totals.event_count += 1
    elif tiering.method == "spend" and tiering.key is not None:
        amount = number(metadata.get(tiering.key))
        if amount is not None:
            totals.spend = bounded_total(totals.spend + amount)


def expiry_time(now: str, days: int) -> str:
    """``now`` plus ``days`` in the stored time format."""
    if len(now) == 27 and now[19] == "." and now[26] == "Z":  # the stored format: only the
        return _day_after(now[:10], days) + now[10:]  # date moves (UTC has no DST)
    return _iso(_moment(now) + timedelta(days=days))


@functools.lru_cache(maxsize=64)
def _day_after(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _moment(iso_text: str) -> datetime:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def combine_profiles(
    tx: Tx, account_id: int, *, winner: int, loser: int, customer_id: str, now: str
) -> None:
    """Fold the loser's rewards into the winner's (profile merge), in the caller's transaction.

    Ledger, activities and badges move; balances, earned points, score, spend and counts add
    up; for a campaign both profiles progressed in, the state further along is kept (more
    achievements, then more counted events). The tier is recomputed from the combined totals.
    """
    tx.flush_staged()  # rows staged earlier in this batch (bulk inserts) move with the rest
    reward_rows.move_history(tx, account_id, winner=winner, loser=loser)
    burn_rows.move(tx, account_id, winner=winner, loser=loser)  # holds, orders, transactions
    kept = reward_rows.totals(tx, account_id, winner)
    gone = reward_rows.totals(tx, account_id, loser)
    if kept.points_balance + gone.points_balance > MAX_TOTAL:
        # Cutting the balance would leave more credits than balance (their expiry would take
        # it below zero): such a merge is refused, and changes nothing.
        raise errors.InvalidValue(
            f"Invalid value: merging these profiles would take the balance past {MAX_TOTAL:,}."
        )
    combined = CustomerTotals(
        account_id,
        winner,
        points_balance=kept.points_balance + gone.points_balance,
        points_earned=min(kept.points_earned + gone.points_earned, MAX_TOTAL),
        score=min(kept.score + gone.score, MAX_TOTAL),
        spend=bounded_total(kept.spend + gone.spend),
        event_count=kept.event_count + gone.event_count,
        tier_order=kept.tier_order,
        progress=_merge_progress(kept.progress, gone.progress),
    )
    compiled = load_compiled(tx, account_id)  # merges are rare: no cache needed
    if compiled is not None:
        Decisions(tx, compiled, combined, customer_id=customer_id, now=now).retier()
    reward_rows.save_totals(tx, combined, now)
    reward_rows.delete_totals(tx, account_id, loser)


def _merge_progress(first: dict[str, State], second: dict[str, State]) -> dict[str, State]:
    merged = dict(first)
    for campaign_id, state in second.items():
        mine = merged.get(campaign_id)
        if mine is None or standing(state) > standing(mine):
            merged[campaign_id] = state
    return merged


def adjust_points(
    tx: Tx,
    compiled: CompiledProgram | None,
    *,
    account_id: int,
    profile_id: int,
    customer_id: str,
    points: int,
    reason: str,
    now: str,
) -> CustomerTotals:
    """Credit (``points`` > 0) or debit (< 0) by hand; a debit may not exceed the available
    balance. Returns the customer's totals after it."""
    totals = reward_rows.totals(tx, account_id, profile_id)
    decisions = Decisions(tx, compiled or NO_PROGRAM, totals, customer_id=customer_id, now=now)
    if points > 0:
        decisions.credit(points, reason=reason)
        decisions.retier()
    else:
        decisions.debit(-points, reason=reason)
    reward_rows.save_totals(tx, totals, now)
    decisions.profile_updated()
    return totals


NO_PROGRAM = compile_program(EMPTY_PROGRAM, version=0)


def owners_lock_keys(tx: Tx, owners: Iterable[tuple[int, int]]) -> list[str]:
    """The lock keys of every customerId of these ``(account, profile)`` owners: housekeeping
    that changes their points makes their requests wait."""
    return [
        customer_lock_key(account_id, customer_id)
        for account_id, profile_id in sorted(owners)
        for customer_id in profiles.customer_ids_of(tx, account_id, profile_id)
    ]


EXPIRY_BATCH = 500


@dataclass(slots=True)
class ExpirePoints:
    """Writer work: turn credits past their expiry into ``Expiry`` debits (the balance read
    back already leaves them out; this records it). Returns how many credits expired."""

    now: str
    _credits: list[tuple[int, int, int, int]] = field(default_factory=list)
    _keys: list[str] = field(default_factory=list)

    def prepare(self, tx: Tx) -> None:
        self._credits = reward_rows.expired_credits(tx, self.now, limit=EXPIRY_BATCH)
        self._keys = owners_lock_keys(tx, {(c[1], c[2]) for c in self._credits})

    def lock_keys(self) -> list[str]:
        """The customers' own keys: their requests wait while their points expire."""
        return self._keys

    def apply(self, tx: Tx) -> int:
        # Read again under the customers' locks: a debit may have spent some meanwhile.
        owners = {(account_id, profile_id) for _, account_id, profile_id, _ in self._credits}
        current = reward_rows.expired_credits(tx, self.now, limit=EXPIRY_BATCH)
        self._credits = [c for c in current if (c[1], c[2]) in owners]
        by_profile: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for credit_id, account_id, profile_id, remaining in self._credits:
            by_profile.setdefault((account_id, profile_id), []).append((credit_id, remaining))
        for (account_id, profile_id), credits in sorted(by_profile.items()):
            _expire(tx, account_id, profile_id, credits, now=self.now)
        return len(self._credits)


def _expire(
    tx: Tx, account_id: int, profile_id: int, credits: list[tuple[int, int]], *, now: str
) -> None:
    totals = reward_rows.totals(tx, account_id, profile_id)
    points = sum(remaining for _, remaining in credits)
    for credit_id, remaining in credits:
        reward_rows.consume(tx, credit_id, remaining)
    entry = Entry("Expiry", kind="Expiry", reason="Points expired")
    _record(tx, totals, entry, -points, now)
    reward_rows.save_totals(tx, totals, now)
    if outbox.wants(tx, account_id, outbox.POINTS_EXPIRED) or outbox.wants(
        tx, account_id, outbox.PROFILE_UPDATED
    ):
        customer_id = profiles.customer_ids_of(tx, account_id, profile_id)[0]
        data = {
            "customerId": customer_id,
            "gbCustomerId": profile_id,
            "points": points,
            "pointsBalance": totals.points_balance,
        }
        outbox.emit(tx, account_id, outbox.POINTS_EXPIRED, data, now=now)
        gameball.announce_profile(tx, account_id, customer_id, profile_id, now=now, totals=totals)


def _record(tx: Tx, totals: CustomerTotals, entry: Entry, change: int, now: str) -> None:
    """Stage the history row of a credit (``change`` > 0) or a debit (< 0, whose points were
    already taken from the credits) and move the balance."""
    entry.direction = "+" if change > 0 else "-"
    entry.points = abs(change)
    entry.balance_before = totals.points_balance
    entry.balance_after = totals.points_balance + change
    reward_rows.add_entry(tx, totals, entry, now)
    totals.points_balance += change
