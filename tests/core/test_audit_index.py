"""The audit log indexed in the catalogue (core/accounts/audit_index): incremental syncs, lines still being
written, files replaced or rewritten, unreadable lines, and the filters of the Admin page."""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timezone

import pytest

from core.accounts.acting import acting_as
from core.accounts.audit import AuditFilter, AuditLog
from core.accounts.manage import Operator
from core.accounts.roles import PermissionDenied, Role
from core.accounts.audit_index import FilePosition, audit_actions, audit_csv, count_audit, query_audit, sync_audit
from core.catalogue import store

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def line(seq: int, user: str = "ana", action: str = "signin", outcome: str = "ok", **extra) -> bytes:
    """One record as the audit log writes it; its time is ``seq`` minutes after T0."""
    stamp = datetime.fromtimestamp(T0 + 60 * seq, timezone.utc).isoformat(timespec="milliseconds")
    record = {
        "time": stamp,
        "user": user,
        "action": action,
        "target": extra.pop("target", user),
        "outcome": outcome,
        "client": "10.0.0.5",
        "details": extra,
    }
    return (json.dumps(record) + "\n").encode("utf-8")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "audit").mkdir()
    return tmp_path


@pytest.fixture
def con(tmp_path):
    connection = store.connect(tmp_path / "catalogue.duckdb")
    yield connection
    connection.close()


def log_path(root):
    return AuditLog(root).path


def append(root, *chunks: bytes) -> None:
    with open(log_path(root), "ab") as handle:
        for chunk in chunks:
            handle.write(chunk)


def indexed(con) -> list[tuple]:
    return con.execute("SELECT seq, user_name, action, outcome, target, details FROM audit ORDER BY seq").fetchall()


def seqs(con) -> list[int]:
    return [row[0] for row in indexed(con)]


def from_scratch(root, tmp_path, name: str = "fresh.duckdb") -> list[tuple]:
    """What a catalogue that never saw the log indexes from it in one sync."""
    fresh = store.connect(tmp_path / name)
    try:
        sync_audit(fresh, root)
        return indexed(fresh)
    finally:
        fresh.close()


# --- incremental syncs ---


@pytest.mark.parametrize(
    "batches, added",
    [
        ([[1, 2, 3]], [3]),
        ([[1], [2, 3], [4]], [1, 2, 1]),
        ([[1, 2], [], [3], []], [2, 0, 1, 0]),  # nothing new: nothing added
        ([[], [1]], [0, 1]),  # an empty file first
    ],
)
def test_each_sync_adds_only_the_new_lines(root, con, tmp_path, batches, added):
    got, numbered = [], []
    for batch in batches:
        append(root, *(line(n) for n in batch))
        numbered += batch
        got.append(sync_audit(con, root))
    assert got == added
    assert seqs(con) == numbered
    assert indexed(con) == from_scratch(root, tmp_path)  # incremental and from scratch agree


def test_a_real_audit_log_is_indexed_with_its_fields(root, con):
    audit = AuditLog(root, clock=lambda: T0)
    audit.record("boss", "users.add", "ok", "ana", "10.0.0.9", {"role": "trainer", "email": None})
    audit.record("ana", "dataset.delete", "refused", "cells", "10.0.0.5", {"needs": "admin"})
    assert sync_audit(con, root) == 2
    frame = query_audit(con)
    assert frame.columns.tolist() == ["seq", "time", "user", "action", "outcome", "target", "client", "details"]
    assert frame["seq"].tolist() == [2, 1]  # newest first
    first = frame.iloc[1]
    assert (first["user"], first["action"], first["outcome"], first["target"], first["client"]) == (
        "boss",
        "users.add",
        "ok",
        "ana",
        "10.0.0.9",
    )
    assert json.loads(first["details"]) == {"role": "trainer", "email": None}
    assert first["time"] == datetime.fromtimestamp(T0, timezone.utc)
    assert str(frame["time"].dt.tz) == "UTC"


def test_syncing_again_changes_nothing(root, con):
    append(root, line(1), line(2))
    assert sync_audit(con, root) == 2
    before = (indexed(con), con.execute("SELECT * FROM audit_read").fetchall())
    assert [sync_audit(con, root) for _ in range(3)] == [0, 0, 0]
    assert (indexed(con), con.execute("SELECT * FROM audit_read").fetchall()) == before


def test_the_position_is_remembered_per_file(root, con):
    append(root, line(1), line(2))
    sync_audit(con, root)
    ((path, bytes_read, file_id),) = con.execute("SELECT * FROM audit_read").fetchall()
    info = os.stat(log_path(root))
    position = FilePosition.parse(file_id, bytes_read)
    assert path == str(log_path(root)) and bytes_read == info.st_size
    assert (position.inode, position.device, position.lines) == (info.st_ino, info.st_dev, 2)


def test_a_missing_log_indexes_nothing(root, con):
    assert sync_audit(con, root) == 0
    assert indexed(con) == [] and con.execute("SELECT count(*) FROM audit_read").fetchone() == (0,)


# --- a last line still being written ---


@pytest.mark.parametrize("cut", [1, 10, -2, -1])  # the last line cut after so many bytes (-1: all but its newline)
def test_a_last_line_without_its_newline_waits_for_the_next_sync(root, con, tmp_path, cut):
    last = line(3, action="users.add")
    append(root, line(1), line(2), last[:cut])
    assert sync_audit(con, root) == 2
    assert seqs(con) == [1, 2]
    assert sync_audit(con, root) == 0  # still not whole
    append(root, last[cut:])
    assert sync_audit(con, root) == 1
    assert indexed(con)[-1][:3] == (3, "ana", "users.add")
    assert indexed(con) == from_scratch(root, tmp_path)


def test_a_first_line_still_being_written(root, con):
    first = line(1)
    append(root, first[:5])
    assert sync_audit(con, root) == 0
    append(root, first[5:], line(2))
    assert sync_audit(con, root) == 2 and seqs(con) == [1, 2]


# --- files replaced, truncated or rewritten are read again from the start ---


def _replace_file(root, content: bytes) -> None:
    """A new file (a new inode) renamed over the log, as a restore from a backup would."""
    other = log_path(root).with_suffix(".new")
    other.write_bytes(content)
    os.replace(other, log_path(root))


def _rewrite_in_place(root, content: bytes) -> None:
    """The same file (same inode) truncated and written again, as an editor or a log rotation may."""
    with open(log_path(root), "r+b") as handle:
        handle.truncate(0)
        handle.write(content)


@pytest.mark.parametrize(
    "change, content, expected",
    [
        ("truncate", line(1), [1]),  # shorter than what was read
        ("truncate", b"", []),  # emptied
        ("rewrite", line(1) + line(2, user="zoe-with-a-longer-name") + line(3), [1, 2, 3]),  # same first line
        ("rewrite", line(9, user="bob"), [1]),  # another first line
        ("replace", line(1) + line(2) + line(3) + line(4), [1, 2, 3, 4]),  # same lines and more, another inode
        ("replace", line(7, user="bob"), [1]),
    ],
)
def test_a_changed_file_is_indexed_again_from_the_start(root, con, tmp_path, change, content, expected):
    append(root, line(1), line(2), line(3))
    assert sync_audit(con, root) == 3
    if change == "replace":
        _replace_file(root, content)
    else:
        _rewrite_in_place(root, content)
    assert sync_audit(con, root) == len(expected)  # every row of the new file counts as new
    assert seqs(con) == expected
    assert indexed(con) == from_scratch(root, tmp_path)
    assert sync_audit(con, root) == 0


def test_a_deleted_log_empties_the_index(root, con, caplog):
    append(root, line(1), line(2))
    sync_audit(con, root)
    log_path(root).unlink()
    with caplog.at_level(logging.WARNING, logger="core.accounts.audit_index"):
        assert sync_audit(con, root) == 0
    assert indexed(con) == [] and "audit.jsonl is gone" in caplog.text
    append(root, line(5))
    assert sync_audit(con, root) == 1 and seqs(con) == [1]


def test_a_data_root_moved_elsewhere_is_indexed_again(root, con, tmp_path):
    append(root, line(1), line(2), line(3))
    sync_audit(con, root)
    moved = tmp_path / "moved"
    (moved / "audit").mkdir(parents=True)
    append(moved, line(1, user="bob"))
    assert sync_audit(con, moved) == 1
    assert [row[1] for row in indexed(con)] == ["bob"]
    assert con.execute("SELECT path FROM audit_read").fetchall() == [(str(log_path(moved)),)]


# --- unreadable lines ---


@pytest.mark.parametrize(
    "bad",
    [
        b"not json at all",
        b"[1, 2, 3]",  # JSON, not an object
        b'{"user": "ana", "action": "signin"}',  # no time, no outcome
        b'{"time": "yesterday", "user": "ana", "action": "signin", "outcome": "ok"}',  # a time that is not ISO 8601
        b'{"time": "2027-01-15T08:00:00+00:00", "user": "ana", "action": "signin", "outcome": "perhaps"}',
        # not UTF-8
        b'{"time": "2027-01-15T08:00:00+00:00", "user": "an\xff\xfe", "action": "signin", "outcome": "ok"}',
        b'{"time": "2027-01-15T08:00:00+00:00", "user": "ana", "action": "sig',  # torn, then a newline
    ],
)
def test_an_unreadable_line_is_skipped_with_a_warning(root, con, tmp_path, caplog, bad):
    append(root, line(1), bad + b"\n", line(3))
    with caplog.at_level(logging.WARNING, logger="core.accounts.audit_index"):
        assert sync_audit(con, root) == 2
    assert seqs(con) == [1, 3]  # line numbers stay those of the file
    assert "audit.jsonl: 1 unreadable line(s) not indexed (line 2)" in caplog.text
    append(root, line(4))
    assert sync_audit(con, root) == 1 and seqs(con) == [1, 3, 4]
    assert indexed(con) == from_scratch(root, tmp_path)


def test_unreadable_lines_at_the_end_of_a_sync_keep_the_numbering(root, con, tmp_path):
    append(root, line(1), b"garbage\n", b"more garbage\n")
    assert sync_audit(con, root) == 1
    append(root, line(4))
    assert sync_audit(con, root) == 1
    assert seqs(con) == [1, 4] and indexed(con) == from_scratch(root, tmp_path)


def test_blank_lines_are_skipped_quietly(root, con, caplog):
    append(root, line(1), b"\n", b"   \n", line(4))
    with caplog.at_level(logging.WARNING, logger="core.accounts.audit_index"):
        assert sync_audit(con, root) == 2
    assert seqs(con) == [1, 4] and "unreadable" not in caplog.text


def test_many_records_across_read_chunks(root, con, tmp_path, monkeypatch):
    monkeypatch.setattr("core.accounts.audit_index.CHUNK_BYTES", 100)  # lines straddle every chunk
    append(root, *(line(n, user=f"user{n % 7}") for n in range(1, 201)))
    assert sync_audit(con, root) == 200
    assert seqs(con) == list(range(1, 201))
    append(root, line(201), line(202)[:30])
    assert sync_audit(con, root) == 1
    assert count_audit(con) == 201


# --- the filters ---

RECORDS = [
    dict(user="ana", action="signin", outcome="ok"),  # seq 1
    dict(user="Ana", action="users.add", outcome="ok"),  # 2
    dict(user="bob", action="users.role", outcome="refused"),  # 3
    dict(user="bob", action="signin.lockout", outcome="refused"),  # 4
    dict(user="zoe", action="usersx", outcome="failed"),  # 5: not a users action
    dict(user="ana", action="users", outcome="ok"),  # 6
    dict(user="shell:root", action="users.delete", outcome="ok"),  # 7
]


@pytest.fixture
def filled(root, con):
    append(root, *(line(seq, **record) for seq, record in enumerate(RECORDS, start=1)))
    sync_audit(con, root)
    return con


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({}, [7, 6, 5, 4, 3, 2, 1]),
        ({"user": "ana"}, [6, 2, 1]),  # any case
        ({"user": "ANA "}, [6, 2, 1]),
        ({"user": "an"}, []),  # the whole name
        ({"user": ""}, [7, 6, 5, 4, 3, 2, 1]),  # an empty box filters nothing
        ({"action": "users"}, [7, 6, 3, 2]),  # the group and its members, never "usersx"
        ({"action": "users.*"}, [7, 6, 3, 2]),
        ({"action": "users.role"}, [3]),
        ({"action": "signin"}, [4, 1]),
        ({"action": "sign"}, []),  # a prefix only at a dot
        ({"action": "users%"}, []),  # SQL wildcards are plain text
        ({"outcome": "refused"}, [4, 3]),
        ({"outcome": "FAILED"}, [5]),
        ({"since": datetime.fromtimestamp(T0 + 60 * 5, timezone.utc)}, [7, 6, 5]),
        ({"since": "2027-01-15T08:05:00+00:00"}, [7, 6, 5]),
        ({"since": "2027-01-15T09:05:00+01:00"}, [7, 6, 5]),  # another zone, the same moment
        ({"since": "2027-01-15T08:05:00"}, [7, 6, 5]),  # no zone: UTC
        ({"since": date(2027, 1, 15)}, [7, 6, 5, 4, 3, 2, 1]),  # a day: from its midnight, UTC
        ({"since": date(2027, 1, 16)}, []),
        ({"user": "bob", "outcome": "refused", "action": "users"}, [3]),
        ({"limit": 2}, [7, 6]),
        ({"limit": None}, [7, 6, 5, 4, 3, 2, 1]),
    ],
)
def test_filters(filled, filters, expected):
    assert query_audit(filled, **filters)["seq"].tolist() == expected
    counted = {key: value for key, value in filters.items() if key != "limit"}
    assert count_audit(filled, **counted) == len(query_audit(filled, **counted, limit=None))


@pytest.mark.parametrize(
    "filters, says",
    [
        ({"outcome": "maybe"}, "outcome: 'maybe' is not an outcome; expected one of ok, refused, failed."),
        ({"since": "last tuesday"}, "since: 'last tuesday' is not a date or time"),
        ({"limit": 0}, "limit: 0 is not a number of records"),
        ({"limit": -5}, "limit: -5"),
        ({"limit": "10"}, "limit: '10'"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(filled, filters, says):
    with pytest.raises(ValueError, match="^" + says.replace("(", r"\(").replace(".", r"\.")):
        query_audit(filled, **filters)


def test_the_actions_offered_with_their_groups(filled):
    assert audit_actions(filled) == [
        "signin",
        "signin.lockout",
        "users",
        "users.add",
        "users.delete",
        "users.role",
        "usersx",
    ]


def test_an_empty_index(con):
    assert query_audit(con).empty and count_audit(con) == 0 and audit_actions(con) == []
    assert query_audit(con).columns.tolist()[:2] == ["seq", "time"]


@pytest.mark.parametrize("read", [query_audit, count_audit, audit_actions])
def test_reading_the_index_needs_audit_read_and_a_refusal_is_logged(filled, root, read):
    with acting_as(Operator("vic", Role.TRAINER), root, "10.0.0.7"):
        with pytest.raises(PermissionDenied, match=r"^vic \(role trainer\) may not audit.read: it needs the role"):
            read(filled)
    refused = AuditLog(root).read(AuditFilter(user="vic"))
    assert [(r.action, r.outcome, r.target, r.client) for r in refused] == [
        ("audit.read", "refused", "audit log", "10.0.0.7")
    ]
    with acting_as(Operator("boss", Role.ADMIN), root):
        read(filled)


# --- the download ---


def test_the_csv_has_utc_times_and_no_formulas(root, con):
    append(
        root,
        line(1, user='=HYPERLINK("http://x")', action="signin", outcome="refused"),
        line(2, user="ana", target="+1", note="@sum"),
    )
    sync_audit(con, root)
    text = audit_csv(query_audit(con).drop(columns="seq")).decode("utf-8")
    header, newest, oldest = text.splitlines()
    assert header == "time,user,action,outcome,target,client,details"
    assert newest.startswith("2027-01-15T08:02:00.000+00:00,ana,signin,ok,'+1,10.0.0.5,")
    assert oldest.startswith('2027-01-15T08:01:00.000+00:00,"\'=HYPERLINK(""http://x"")",signin,refused')
    assert not any(cell.startswith(("=", "+", "@")) for row in text.splitlines() for cell in row.split(","))
