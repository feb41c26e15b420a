"""supersedes: the projection keeps the newest state of each object, whatever the order."""

from __future__ import annotations

from rules import build_snapshot, fold, parse_event, records_from_event, supersedes


def record(event_fn, name, object_type=None):
    """The first record (of ``object_type`` if given) of a fixture event."""
    records = records_from_event(event_fn(name))
    return next(r for r in records if object_type in (None, r.object_type))


def test_anything_supersedes_nothing(event):
    """Any record replaces a missing one."""
    assert supersedes(record(event, "charge.succeeded__card"), None)


def test_older_never_replaces_newer(event):
    """A later event's snapshot wins in both comparison directions."""
    failed = record(event, "invoice.payment_failed__current_renewal", "invoice")
    voided = record(event, "invoice.voided__renewal", "invoice")
    assert supersedes(voided, failed)
    assert not supersedes(failed, voided)


def test_fold_is_order_independent(event):
    """Folding the same events in either order keeps the newer invoice state."""
    a = event("invoice.payment_failed__current_renewal")
    b = event("invoice.voided__renewal")
    assert fold([a, b]) == fold([b, a])
    assert fold([b, a])[("invoice", "in_Renewal")].data.status == "void"


def test_same_second_later_state_wins(payload):
    """Two events in the same second: a paid invoice beats an open one."""
    failed = payload("invoice.payment_failed__current_renewal")
    paid = payload("invoice.payment_failed__current_renewal")
    paid["id"] = "evt_0Paid"  # sorts before the failed event's id on purpose
    paid["type"] = "invoice.paid"
    paid["data"]["object"].update(status="paid", amount_paid=2900, amount_remaining=0)
    open_rec = records_from_event(parse_event(failed))[0]
    paid_rec = records_from_event(parse_event(paid))[0]
    assert supersedes(paid_rec, open_rec) and not supersedes(open_rec, paid_rec)


def test_partial_never_replaces_full(event):
    """A newer partial customer hint never replaces a full customer record."""
    full = record(event, "customer.created__current")
    hint = record(event, "invoice.payment_failed__current_renewal", "customer")
    assert hint.partial and hint.data.event_id > ""
    assert not supersedes(hint, full)
    assert supersedes(full, hint)


def test_equal_version_is_a_no_op(event):
    """A redelivered event (same version) does not supersede itself."""
    rec = record(event, "charge.succeeded__card")
    assert not supersedes(rec, rec)


def test_fold_ignores_redeliveries(event):
    """Delivering an event many times folds to the same state as once."""
    ev = event("charge.succeeded__card")
    assert fold([ev, ev, ev]) == fold([ev])


def test_build_snapshot_picks_winners_and_as_of(event):
    """build_snapshot keeps each object's winning record and reports the newest event time."""
    a = event("invoice.payment_failed__current_renewal")
    b = event("invoice.voided__renewal")
    records = [*records_from_event(b), *records_from_event(a)]
    snapshot = build_snapshot(records)
    (invoice,) = snapshot.invoices
    assert invoice.status == "void"
    assert snapshot.as_of == b.created
    assert [c.id for c in snapshot.customers] == ["cus_Ada"]


def test_scenario_fold_independent_of_arrival(scenario_name, scenario):
    """Every scenario folds to the same projection forwards and backwards."""
    events = scenario(scenario_name)
    assert fold(events) == fold(list(reversed(events)))


def test_future_created_is_trusted_only_up_to_receipt_plus_skew(payload):
    """An event dated far past its receipt orders as if sent at receipt + 300 s; a normal
    event is left as it is."""
    from rules.records import MAX_CREATED_AHEAD_SECONDS, trusted_event_time

    event = parse_event(payload("invoice.payment_failed__current_renewal"))
    assert trusted_event_time(event, event.created) is event
    future = parse_event({**payload("invoice.payment_failed__current_renewal"), "created": 2**37})
    clamped = trusted_event_time(future, 1_764_000_000)
    assert clamped.created == 1_764_000_000 + MAX_CREATED_AHEAD_SECONDS
    assert (clamped.id, clamped.object) == (future.id, future.object)
