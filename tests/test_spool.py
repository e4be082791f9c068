"""The on-disk spool: ordering, claiming, finishing, failing and crash recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.envelope import Envelope
from ingest.spool import PRIORITY_NORMAL, PRIORITY_URGENT, Spool, SpoolItem


def _envelope(n: int = 0) -> Envelope:
    return Envelope(
        mail_from=f"agent{n}@fbi.gov",
        rcpt_tos=("lawenforcement@example-platform.com",),
        received_at=datetime(2024, 10, 1, 12, 0, n, tzinfo=UTC),
    )


def _raw(n: int) -> bytes:
    return b"Subject: message %d\r\n\r\nbody %d\r\n" % (n, n)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _claim(spool: Spool, item_id: str) -> SpoolItem:
    item = spool.claim(item_id)
    assert item is not None
    return item


def _claim_only(spool: Spool) -> SpoolItem:
    (item_id,) = spool.pending()
    return _claim(spool, item_id)


def test_creates_its_folders(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    spool = Spool(root)
    assert {"bad", "cur", "new", "tmp"} <= set(_names(root))
    assert all(folder.is_dir() for folder in (spool.tmp, spool.new, spool.cur, spool.bad))
    assert spool.pending() == []
    assert spool.bad_items() == []
    Spool(root)  # opening an existing spool is fine


def test_put_lands_in_new_and_nothing_is_left_in_tmp(spool: Spool) -> None:
    item_id = spool.put(_raw(1), _envelope(1))
    assert spool.pending() == [item_id]
    assert _names(spool.new) == [item_id]
    assert _names(spool.tmp) == []
    assert _names(spool.cur) == []
    assert item_id.startswith(f"p{PRIORITY_NORMAL}-")


def test_put_many_returns_ids_in_order(spool: Spool) -> None:
    ids = spool.put_many([(_raw(1), _envelope(1), 5), (_raw(2), _envelope(2), 5)])
    assert len(ids) == 2
    assert spool.pending() == ids
    assert [_claim(spool, i).read() for i in ids] == [
        (_raw(1), _envelope(1)),
        (_raw(2), _envelope(2)),
    ]


def test_pending_orders_priority_then_arrival(spool: Spool) -> None:
    first = spool.put(_raw(1), _envelope(1))
    second = spool.put(_raw(2), _envelope(2))
    urgent_a = spool.put(_raw(3), _envelope(3), priority=PRIORITY_URGENT)
    third = spool.put(_raw(4), _envelope(4))
    urgent_b = spool.put(_raw(5), _envelope(5), priority=PRIORITY_URGENT)
    assert spool.pending() == [urgent_a, urgent_b, first, second, third]


def test_pending_ignores_hidden_entries(spool: Spool) -> None:
    item_id = spool.put(_raw(1), _envelope(1))
    (spool.new / ".DS_Store").write_bytes(b"")
    assert spool.pending() == [item_id]


def test_claim_moves_new_to_cur(spool: Spool) -> None:
    item_id = spool.put(_raw(1), _envelope(1))
    item = _claim(spool, item_id)
    assert item.id == item_id
    assert item.path == spool.cur / item_id
    assert item.path.exists()
    assert _names(spool.new) == []
    assert _names(spool.cur) == [item_id]
    assert spool.pending() == []


def test_claim_of_taken_item_returns_none(spool: Spool) -> None:
    item_id = spool.put(_raw(1), _envelope(1))
    assert spool.claim(item_id) is not None
    assert spool.claim(item_id) is None
    assert spool.claim("p5-does-not-exist") is None


def test_claim_next_follows_pending_order(spool: Spool) -> None:
    normal = spool.put(_raw(1), _envelope(1))
    urgent = spool.put(_raw(2), _envelope(2), priority=PRIORITY_URGENT)
    first = spool.claim_next()
    second = spool.claim_next()
    assert first is not None
    assert second is not None
    assert [first.id, second.id] == [urgent, normal]
    assert spool.claim_next() is None


def test_message_bytes_and_envelope_round_trip_exactly(spool: Spool) -> None:
    raw = (
        b"From: =?utf-8?q?Agent?= <agent@fbi.gov>\r\n"
        b"Subject: bytes \xe9\xff\x00 kept\r\n\r\n"
        b"line one\r\nbare lf\nbare cr\r\x00\x01\x80\xfe trailing  "
    )
    envelope = Envelope(
        mail_from="bounce+tag@mail.fbi.gov",
        rcpt_tos=("lawenforcement@example-platform.com", "inquiries@example-platform.com"),
        received_at=datetime(2024, 10, 1, 12, 0, 30, 123456, tzinfo=timezone(timedelta(hours=-4))),
        peer="203.0.113.7",
        helo="mail.fbi.gov",
        channel="email",
        extra={"tls": "TLSv1.3", "size": "1234", "note": "caf\u00e9 \u2013 ok\nsecond line"},
    )
    item = _claim(spool, spool.put(raw, envelope))
    got_raw, got_envelope = item.read()
    assert got_raw == raw
    assert got_envelope == envelope
    assert got_envelope.received_at.utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize("raw", [b"", b"\n", b"\r\n\r\n", b"X-LE-Intake-Envelope: {}\r\n"])
def test_edge_case_bodies_round_trip(spool: Spool, raw: bytes) -> None:
    envelope = Envelope("", (), datetime(2024, 1, 1, tzinfo=UTC))
    item = _claim(spool, spool.put(raw, envelope))
    assert item.read() == (raw, envelope)


def test_finish_removes_the_item(spool: Spool) -> None:
    keep = spool.put(_raw(1), _envelope(1))
    item = _claim(spool, spool.put(_raw(2), _envelope(2)))
    spool.finish(item)
    assert not item.path.exists()
    assert _names(spool.cur) == []
    assert spool.pending() == [keep]
    assert spool.bad_items() == []


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_finished_message_content_is_not_kept_anywhere(spool: Spool) -> None:
    secret = b"Subject: x\r\n\r\nSECRET-CONTENT-4242 @target_1\r\n"
    item = _claim(spool, spool.put(secret, _envelope(1)))
    spool.finish(item)
    assert not any(b"SECRET-CONTENT-4242" in p.read_bytes() for p in _files_under(spool.root))
    assert not any(b"agent1@fbi.gov" in p.read_bytes() for p in _files_under(spool.root))


def test_put_after_finish_of_a_longer_message_round_trips(spool: Spool) -> None:
    long_raw = b"Subject: long\r\n\r\n" + b"x" * 10_000 + b"\r\n"
    spool.finish(_claim(spool, spool.put(long_raw, _envelope(1))))
    short_raw = b"Subject: short\r\n\r\nbrief\r\n"
    item = _claim(spool, spool.put(short_raw, _envelope(2)))
    assert item.read() == (short_raw, _envelope(2))


def test_preallocated_files_serve_puts(spool: Spool) -> None:
    spool.preallocate(3)
    ids = [spool.put(_raw(n), _envelope(n)) for n in range(5)]
    assert spool.pending() == ids
    assert [_claim(spool, i).read() for i in ids] == [(_raw(n), _envelope(n)) for n in range(5)]
    assert _names(spool.tmp) == []


def test_finish_of_vanished_item_is_quiet(spool: Spool) -> None:
    item = _claim(spool, spool.put(_raw(1), _envelope(1)))
    spool.finish(item)
    spool.finish(item)
    assert not item.path.exists()


def test_fail_counts_attempts_then_moves_to_bad(spool: Spool) -> None:
    spool.put(_raw(1), _envelope(1))

    item = _claim_only(spool)
    assert item.attempts() == 0
    assert spool.fail(item, "boom 1", max_attempts=3) is False
    assert _names(spool.cur) == []
    assert len(spool.pending()) == 1  # back in new/ for another try

    item = _claim_only(spool)
    assert item.attempts() == 1
    assert item.read() == (_raw(1), _envelope(1))
    assert spool.fail(item, "boom 2", max_attempts=3) is False

    item = _claim_only(spool)
    assert item.attempts() == 2
    assert spool.fail(item, "Traceback: ValueError \u2013 final", max_attempts=3) is True
    assert spool.pending() == []
    assert _names(spool.cur) == []

    (bad,) = spool.bad_items()
    assert bad.read() == (_raw(1), _envelope(1))  # the message itself is kept
    errors = [p for p in spool.bad.iterdir() if p.name.endswith("error.txt")]
    assert len(errors) == 1
    assert errors[0].name.startswith(bad.id)
    text = errors[0].read_text("utf-8")
    assert "Traceback: ValueError \u2013 final" in text
    assert "3" in text.splitlines()[0]  # the attempt count is recorded


def test_retried_item_keeps_its_place_in_line(spool: Spool) -> None:
    early = spool.put(_raw(1), _envelope(1))
    late = spool.put(_raw(2), _envelope(2))
    item = _claim(spool, early)
    assert spool.fail(item, "transient", max_attempts=3) is False
    retried, waiting = spool.pending()
    assert retried.startswith(early)
    assert waiting == late


def test_fail_with_max_attempts_one_goes_straight_to_bad(spool: Spool) -> None:
    item = _claim(spool, spool.put(_raw(1), _envelope(1)))
    assert spool.fail(item, "fatal", max_attempts=1) is True
    assert [b.id for b in spool.bad_items()] == [item.id]
    assert spool.pending() == []


def test_recover_moves_cur_back_and_clears_tmp(spool: Spool) -> None:
    a = spool.put(_raw(1), _envelope(1))
    b = spool.put(_raw(2), _envelope(2))
    c = spool.put(_raw(3), _envelope(3))
    _claim(spool, a)
    _claim(spool, b)
    (spool.tmp / "p5-00000000000000000001-1-deadbeef").write_bytes(b"partial")

    assert spool.recover() == 2
    assert _names(spool.tmp) == []
    assert _names(spool.cur) == []
    assert spool.pending() == [a, b, c]
    assert _claim(spool, a).read() == (_raw(1), _envelope(1))


def test_recover_on_clean_spool_moves_nothing(spool: Spool) -> None:
    item_id = spool.put(_raw(1), _envelope(1))
    assert spool.recover() == 0
    assert spool.pending() == [item_id]
