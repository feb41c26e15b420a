"""The one interface every notification channel implements.

A channel answers three questions, each at its own time:

- ``plan``: a case just changed — which outbox rows does this channel want? (inside the
  pipeline's transaction; rows are deduplicated by key, so planning twice adds nothing)
- ``prepare``: a row is being delivered — what exactly goes out, read from the store now, or
  why nothing should (the invoice got paid, the channel is off)?
- ``send``: put the prepared message on the wire; raise ``TransientDeliveryError`` or
  ``PermanentDeliveryError`` when it does not go.

``connect`` turns the settings into the channel's connection (``None``: not configured, rows
are written ``skipped`` with a "would have sent" note). A new channel is one module that
defines a ``ChannelSpec`` plus its line in ``worker.notifications.channels.CHANNELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from rules import BillingSnapshot, Finding
    from worker.case_document import CaseDocument
    from worker.notifications.outbox import Claim
    from worker.notifications.planning import CaseChange, NotifyPolicy
    from worker.settings import Settings
    from worker.store.tables import CaseRow


@dataclass(frozen=True)
class PlanContext:
    """What a channel sees when a case changes (inside the pipeline's write transaction)."""

    session: Session
    change: CaseChange
    document: CaseDocument  # the case's typed finding and masked customer view
    snapshot: BillingSnapshot
    now: datetime
    policy: NotifyPolicy

    @property
    def finding(self) -> Finding:
        return self.document.finding


@dataclass(frozen=True)
class PlannedRow:
    """One outbox row a channel wants; ``configured=False`` writes it ``skipped`` with
    ``would_send`` in the case timeline (None: whether the channel is configured)."""

    key: str
    reason: str
    payload: dict[str, Any]
    would_send: str
    invoice_id: str | None = None
    configured: bool | None = None


@dataclass(frozen=True)
class SendContext:
    """What a channel sees when one of its rows is delivered (a read session is open)."""

    claim: Claim
    case: CaseRow | None  # None for a row about no case (an operator alert)
    document: CaseDocument | None  # the case's typed finding and masked customer view
    session: Session
    connection: Any  # what ``connect`` returned; None when the channel is off now

    @property
    def case_row(self) -> CaseRow:
        """The row's case, for channels that only ever deliver about a case."""
        if self.case is None:
            raise ValueError(f"outbox row {self.claim.id} is about no case")
        return self.case

    @property
    def finding(self) -> Finding:
        if self.document is None:
            raise ValueError(f"outbox row {self.claim.id} is about no case")
        return self.document.finding


@dataclass(frozen=True)
class Outgoing:
    """A prepared message and the timeline line that describes it (addresses masked)."""

    describe: str
    message: Any


@dataclass(frozen=True)
class Settle:
    """Finish the row without sending: cancelled, skipped or failed, with a timeline note."""

    status: str
    note: str
    error: str | None = None


@dataclass(frozen=True)
class ChannelSpec:
    """A notification channel: its outbox name, how it plans, prepares and sends."""

    name: str  # the outbox ``channel`` value
    label: str  # how a timeline names one of its messages, e.g. "Slack alert"
    customer_facing: bool  # its pending rows are cancelled when their problem clears
    connect: Callable[[Settings], Any | None]
    plan: Callable[[PlanContext], list[PlannedRow]]
    prepare: Callable[[SendContext], Outgoing | Settle]
    send: Callable[[Any, Any], None]  # (connection, message)
