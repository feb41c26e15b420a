"""Objects an incoming record points at that the store has never seen: a dispute on a charge
from before install. Fetched once from the API so the record reaches its person."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import stripe
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rules import ObjectRecord
from worker.store.db import read_session
from worker.store.tables import ObjectRow
from worker.stripe_api import SubscriptionRefresher, fetched_records, stripe_client

log = structlog.get_logger()


@dataclass(frozen=True)
class Link:
    """A record of ``object_type`` names a ``linked_type`` object in ``attribute``."""

    object_type: str
    attribute: str
    linked_type: str
    event_type: str  # the linked object, once fetched, is projected as this event type
    retrieve: Callable[[stripe.StripeClient, str], Any]


LINKS: tuple[Link, ...] = (
    Link("dispute", "charge_id", "charge", "charge.updated", lambda c, i: c.v1.charges.retrieve(i)),
)


def unseen_links(session: Session, records: Iterable[ObjectRecord]) -> list[tuple[Link, str]]:
    """The linked objects (and their ids) the projection does not hold yet."""
    wanted: dict[tuple[str, str], Link] = {}
    for record in records:
        for link in LINKS:
            linked_id = getattr(record.data, link.attribute, None)
            if record.object_type == link.object_type and isinstance(linked_id, str):
                wanted[(link.linked_type, linked_id)] = link
    if not wanted:
        return []
    known = {
        (row.object_type, row.object_id)
        for row in session.execute(
            select(ObjectRow.object_type, ObjectRow.object_id).where(
                ObjectRow.object_id.in_([object_id for _type, object_id in wanted])
            )
        )
    }
    return [(link, key[1]) for key, link in sorted(wanted.items()) if key not in known]


def fetch_links(
    client: stripe.StripeClient, links: Sequence[tuple[Link, str]], fetched_at: int
) -> list[ObjectRecord]:
    """Each linked object, retrieved once, as records; one that cannot be read is logged and
    left out (its record then waits for the link, as it would without a key)."""
    records: list[ObjectRecord] = []
    for link, object_id in links:
        try:
            obj = link.retrieve(client, object_id)
        except (stripe.StripeError, OSError) as error:
            log.warning(
                "stripe_fetch_unseen_failed", object_id=object_id, error=type(error).__name__
            )
            continue
        records.extend(fetched_records(link.event_type, obj.to_dict(), fetched_at))
    return records


def with_unseen(
    engine: Engine,
    refresher: SubscriptionRefresher,
    records: tuple[ObjectRecord, ...],
    fetched_at: int,
) -> tuple[ObjectRecord, ...]:
    """The worker's side (with ``STRIPE_API_KEY``): the event's records, preceded by the
    linked objects billing-ops has never seen, fetched once before evaluating."""
    with read_session(engine) as session:
        links = unseen_links(session, records)
    if not links:
        return records
    client = stripe_client(refresher.api_key, refresher.api_base)
    return (*fetch_links(client, links, fetched_at), *records)
