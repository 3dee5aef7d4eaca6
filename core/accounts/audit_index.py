"""The audit log indexed in the catalogue, for the Admin page: ``audit/audit.jsonl`` → the ``audit`` table.

The log file stays the record (:mod:`core.accounts.audit` only ever appends to it); the ``audit`` table is
an index of it, so that the page can filter thousands of records without reading the whole file on every
click. :func:`sync_audit` reads only what was appended since the last sync: ``audit_read`` remembers, per
file, how many bytes were indexed and which file that was (its device, inode and a hash of its first line,
plus the number of lines read). A file that was replaced, truncated or rewritten is indexed again from
scratch; a last line still being written (no newline yet) waits for the next sync.

``seq`` is the record's line number in the file (1 for the first line), so an incremental sync and a sync
from scratch give the same rows. Lines that cannot be read (not JSON, not a record, a time that is not
ISO 8601) are skipped with a warning; their line numbers stay unused.

Reading the index (:func:`query_audit`, :func:`count_audit`, :func:`audit_actions`) needs ``audit.read``, as
reading the file does: the log holds every user's actions and addresses. Indexing reveals nothing and is
not checked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, time as day_time, timezone
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pandas as pd

from core.accounts import acting
from core.accounts.audit import AuditLog, AuditRecord, Outcome
from core.catalogue.store import transaction

log = logging.getLogger(__name__)

# Read the new part of the log this much at a time (a first sync of a long log stays within memory).
CHUNK_BYTES = 4 * 1024 * 1024
# The first line identifies the file; a record is far shorter, and a longer line is hashed this far.
FIRST_LINE_MAX = 64 * 1024
DEFAULT_LIMIT = 500
COLUMNS = ("seq", "time", "user", "action", "outcome", "target", "client", "details")
# A spreadsheet runs a cell that starts with one of these as a formula; a user name typed at the sign-in
# form may start with any of them.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FilePosition:
    """How far one audit file was indexed: which file it was and how many bytes and lines of it were read.

    Stored in ``audit_read.file_id`` as ``dev=… ino=… first=… lines=…`` (the byte count has its own column).

    >>> position = FilePosition.parse("dev=2049 ino=17 first=0123456789abcdef lines=3", 420)
    >>> position.lines, position.bytes_read, position.same_file(FilePosition(2049, 17, "0123456789abcdef"))
    (3, 420, True)
    >>> FilePosition.parse(position.file_id, 420) == position
    True
    """

    device: int
    inode: int
    first_line: str  # the first 16 hex digits of the first line's SHA-256; empty while there is no whole line
    lines: int = 0
    bytes_read: int = 0

    @property
    def file_id(self) -> str:
        return f"dev={self.device} ino={self.inode} first={self.first_line} lines={self.lines}"

    def same_file(self, other: FilePosition) -> bool:
        return (self.device, self.inode, self.first_line) == (other.device, other.inode, other.first_line)

    @classmethod
    def parse(cls, file_id: str | None, bytes_read: int | None) -> FilePosition | None:
        """The position stored in ``audit_read``; None for a value this version did not write."""
        try:
            fields = dict(part.split("=", 1) for part in str(file_id or "").split())
            return cls(
                int(fields["dev"]), int(fields["ino"]), fields["first"], int(fields["lines"]), int(bytes_read or 0)
            )
        except (KeyError, ValueError):
            return None


def _first_line_hash(handle: BinaryIO) -> str:
    handle.seek(0)
    line = handle.readline(FIRST_LINE_MAX)
    if not line.endswith(b"\n") and len(line) < FIRST_LINE_MAX:
        return ""  # no whole line yet: the file is identified once it has one
    return hashlib.sha256(line).hexdigest()[:16]


def _still_continues(handle: BinaryIO, position: FilePosition, size: int) -> bool:
    """Whether the file still holds what was read: as long as before, and a line ended where reading stopped."""
    if size < position.bytes_read:
        return False
    if position.bytes_read == 0:
        return True
    handle.seek(position.bytes_read - 1)
    return handle.read(1) == b"\n"


def _parse_line(line: bytes) -> AuditRecord | None:
    """The record of one line; None for a blank line; ``ValueError`` (and kin) for one that cannot be read."""
    if not line.strip():
        return None
    record = AuditRecord.from_dict(json.loads(line.decode("utf-8")))
    _timestamp(record.time)  # a time that cannot be indexed makes the line unreadable
    return record


def _timestamp(text: str) -> datetime:
    """The record's time in UTC (a time without a zone is taken as UTC)."""
    stamp = datetime.fromisoformat(text)
    return stamp.astimezone(timezone.utc) if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _row(seq: int, record: AuditRecord) -> tuple[Any, ...]:
    details = json.dumps(dict(record.details), ensure_ascii=False, sort_keys=True, default=str)
    return (
        seq,
        _timestamp(record.time),
        record.user,
        record.action,
        record.outcome.value,
        record.target,
        record.client,
        details,
    )


def _read_rows(handle: BinaryIO, start: int, first_seq: int, path: Path) -> tuple[list[tuple], int, int]:
    """Rows of the whole lines after byte ``start``; with the bytes and the lines they took."""
    handle.seek(start)
    rows: list[tuple] = []
    consumed = lines = 0
    pending = b""
    unreadable: list[int] = []
    while chunk := handle.read(CHUNK_BYTES):
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for line in whole:
            lines += 1
            consumed += len(line) + 1
            try:
                record = _parse_line(line)
            except (ValueError, KeyError, TypeError):  # JSON, UTF-8, a missing key, an unknown outcome
                unreadable.append(first_seq + lines)
                continue
            if record is not None:
                rows.append(_row(first_seq + lines, record))
    if unreadable:
        shown = ", ".join(map(str, unreadable[:10])) + (" …" if len(unreadable) > 10 else "")
        log.warning("%s: %d unreadable line(s) not indexed (line %s)", path, len(unreadable), shown)
    return rows, consumed, lines


def _insert(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["seq", "ts", "user_name", "action", "outcome", "target", "client", "details"])
    con.register("incoming_audit", frame)
    try:
        con.execute(
            "INSERT INTO audit SELECT seq, ts, user_name, action, outcome, target, client, details FROM incoming_audit"
        )
    finally:
        con.unregister("incoming_audit")


def sync_audit(con: duckdb.DuckDBPyConnection, data_root: Path) -> int:
    """Index the records appended to ``data_root``'s audit log since the last sync; return how many.

    Idempotent: a second sync with nothing new appended adds nothing. A replaced, truncated or rewritten
    file is indexed again from its first line; a missing file leaves an empty index.

    Parameters
    ----------
    con
        A catalogue connection (schema 10 or later), used for writing; the caller holds the write lock.
    data_root
        The data root whose ``audit/audit.jsonl`` is indexed.

    Returns
    -------
    int
        The number of rows added to the ``audit`` table.

    Examples
    --------
    >>> import tempfile
    >>> from core.catalogue import store
    >>> root = Path(tempfile.mkdtemp())
    >>> con = store.connect(root / "catalogue.duckdb")
    >>> log_ = AuditLog(root)
    >>> _ = log_.record("ana", "signin", "ok", "ana", "10.0.0.5")
    >>> sync_audit(con, root), sync_audit(con, root)
    (1, 0)
    >>> _ = log_.record("ana", "users.add", "refused", "bob")
    >>> sync_audit(con, root), con.execute("SELECT seq, action FROM audit ORDER BY seq").fetchall()
    (1, [(1, 'signin'), (2, 'users.add')])
    """
    path = AuditLog(data_root).path
    key = str(path)
    stored = con.execute("SELECT file_id, bytes_read FROM audit_read WHERE path = ?", [key]).fetchone()
    before = FilePosition.parse(*stored) if stored else None
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        if con.execute("SELECT count(*) FROM audit_read").fetchone()[0]:  # this log's rows, or a moved root's
            log.warning("%s is gone: the audit index is emptied", path)
            _replace(con, key, None, [], reset=True)
        return 0
    with handle:
        info = os.fstat(handle.fileno())
        found = FilePosition(info.st_dev, info.st_ino, _first_line_hash(handle))
        resume = before is not None and before.same_file(found) and _still_continues(handle, before, info.st_size)
        if stored and not resume:
            log.info("%s was replaced or rewritten since it was indexed: indexing it again from the start", path)
        start = before if resume else FilePosition(found.device, found.inode, found.first_line)
        rows, consumed, lines = _read_rows(handle, start.bytes_read, start.lines, path)
    after = FilePosition(found.device, found.inode, found.first_line, start.lines + lines, start.bytes_read + consumed)
    if resume and after == before:
        return 0
    _replace(con, key, after, rows, reset=not resume)
    if rows:
        log.info("indexed %d audit record(s) from %s", len(rows), path)
    return len(rows)


def _replace(
    con: duckdb.DuckDBPyConnection, key: str, position: FilePosition | None, rows: list[tuple], reset: bool
) -> None:
    """In one transaction: (with ``reset``, empty the index,) add ``rows`` and store ``position``."""
    with transaction(con):
        if reset:  # the index holds one log: a log read again from scratch replaces every position too
            con.execute("DELETE FROM audit")
            con.execute("DELETE FROM audit_read")
        else:
            con.execute("DELETE FROM audit_read WHERE path = ?", [key])
        _insert(con, rows)
        if position is not None:
            con.execute(
                "INSERT INTO audit_read (path, bytes_read, file_id) VALUES (?, ?, ?)",
                [key, position.bytes_read, position.file_id],
            )


# ------------------------------------------------------------------------------------------ reading


def _check_may_read() -> None:
    """Raise :class:`~core.accounts.roles.PermissionDenied` (logged) unless the person acting may read the log."""
    acting.check("audit.read", "audit log")


def _since_timestamp(since: date | datetime | str | None) -> datetime | None:
    """``since`` as an aware time: a date means its midnight in UTC, a time without a zone is UTC.

    >>> _since_timestamp(date(2026, 3, 1))
    datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> _since_timestamp("2026-03-01T12:00:00+02:00").isoformat()
    '2026-03-01T12:00:00+02:00'
    """
    if since is None or since == "":
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
    if isinstance(since, date):
        return datetime.combine(since, day_time(0), timezone.utc)
    try:
        return _since_timestamp(datetime.fromisoformat(str(since).strip()))
    except ValueError:
        raise ValueError(
            f"since: {since!r} is not a date or time; expected the form 2026-03-01 or 2026-03-01T12:00:00+00:00."
        ) from None


def _action_prefix(action: str) -> str:
    """The action as given, without a trailing ``.*`` (``users.*`` and ``users`` both mean every users action)."""
    action = action.strip()
    return action[:-2] if action.endswith(".*") else action


def _where(
    user: str | None, action: str | None, outcome: Outcome | str | None, since: date | datetime | str | None
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if user is not None and str(user).strip():
        clauses.append("lower(user_name) = lower(?)")
        params.append(str(user).strip())
    if action is not None and _action_prefix(action):
        prefix = _action_prefix(action)
        clauses.append("(action = ? OR starts_with(action, ?))")
        params += [prefix, prefix + "."]
    if outcome is not None and str(outcome) != "":
        try:
            params.append(Outcome(str(outcome).strip().lower()).value)
        except ValueError:
            raise ValueError(
                f"outcome: {outcome!r} is not an outcome; expected one of {', '.join(o.value for o in Outcome)}."
            ) from None
        clauses.append("outcome = ?")
    stamp = _since_timestamp(since)
    if stamp is not None:
        clauses.append("ts >= ?")
        params.append(stamp)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def query_audit(
    con: duckdb.DuckDBPyConnection,
    user: str | None = None,
    action: str | None = None,
    outcome: Outcome | str | None = None,
    since: date | datetime | str | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """The indexed audit records that match every filter given, newest first.

    Parameters
    ----------
    con
        A catalogue connection (run :func:`sync_audit` first to see the newest records).
    user
        Only this user's records (the whole name, any case).
    action
        Only this action and its sub-actions: ``"users"`` (or ``"users.*"``) matches ``users.add``,
        ``users.role`` …; ``"signin"`` matches ``signin`` and ``signin.lockout``.
    outcome
        Only records that ended so: ``ok``, ``refused`` or ``failed``.
    since
        Only records from this time on; a date means from its midnight (UTC), a time without a zone is UTC.
    limit
        At most this many (the newest); None for all.

    Returns
    -------
    pandas.DataFrame
        Columns ``seq`` (the line in the log file), ``time`` (UTC), ``user``, ``action``, ``outcome``,
        ``target``, ``client`` and ``details`` (JSON text).

    Raises
    ------
    PermissionDenied
        When the person acting may not ``audit.read``.
    ValueError
        For an outcome, a ``since`` or a ``limit`` that is not one; the message names the field.

    Examples
    --------
    >>> import tempfile
    >>> from core.catalogue import store
    >>> root = Path(tempfile.mkdtemp())
    >>> con = store.connect(root / "catalogue.duckdb")
    >>> for user, action in (("ana", "signin"), ("Ana", "users.add"), ("bob", "users.role"), ("ana", "usersx")):
    ...     _ = AuditLog(root).record(user, action)
    >>> _ = sync_audit(con, root)
    >>> query_audit(con, user="ANA", action="users")[["seq", "user", "action"]].values.tolist()
    [[2, 'Ana', 'users.add']]
    >>> query_audit(con, action="users.*", limit=1)["action"].tolist()
    ['users.role']
    """
    _check_may_read()
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"limit: {limit!r} is not a number of records; give a whole number from 1, or None for all of them."
        )
    where, params = _where(user, action, outcome, since)
    sql = (
        "SELECT seq, ts AS time, user_name AS user, action, outcome, target, client, details "
        f"FROM audit{where} ORDER BY seq DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    frame = con.execute(sql, params).df()
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame[list(COLUMNS)]


def count_audit(
    con: duckdb.DuckDBPyConnection,
    user: str | None = None,
    action: str | None = None,
    outcome: Outcome | str | None = None,
    since: date | datetime | str | None = None,
) -> int:
    """How many indexed records match the filters (those of :func:`query_audit`); needs ``audit.read``."""
    _check_may_read()
    where, params = _where(user, action, outcome, since)
    return int(con.execute(f"SELECT count(*) FROM audit{where}", params).fetchone()[0])


def audit_actions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The actions in the index, each group before its members (``users``, then ``users.add`` …); needs
    ``audit.read``.

    A group is the part before the first dot of an action that has one; as a filter it matches every member.

    >>> import tempfile
    >>> from core.catalogue import store
    >>> root = Path(tempfile.mkdtemp())
    >>> con = store.connect(root / "catalogue.duckdb")
    >>> for action in ("users.role", "signin", "users.add", "signin.lockout"):
    ...     _ = AuditLog(root).record("ana", action)
    >>> _ = sync_audit(con, root)
    >>> audit_actions(con)
    ['signin', 'signin.lockout', 'users', 'users.add', 'users.role']
    """
    _check_may_read()
    actions = {row[0] for row in con.execute("SELECT DISTINCT action FROM audit").fetchall() if row[0]}
    groups = {action.split(".", 1)[0] for action in actions if "." in action}
    return sorted(actions | groups, key=lambda action: (action.split(".", 1)[0], "." in action, action))


def _spreadsheet_safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, quoted so that it shows as text.

    >>> _spreadsheet_safe("=HYPERLINK(1)"), _spreadsheet_safe("ana"), _spreadsheet_safe(3)
    ("'=HYPERLINK(1)", 'ana', 3)
    """
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def audit_csv(frame: pd.DataFrame) -> bytes:
    """Audit records (a frame of :func:`query_audit`) as UTF-8 CSV, times in ISO 8601 UTC.

    Text that a spreadsheet would run as a formula (a user name typed at the sign-in form may be
    ``=HYPERLINK(…)``) is written with a leading ``'``.

    >>> frame = pd.DataFrame({"time": pd.to_datetime(["2026-03-01T08:00:00Z"]), "user": ["=cmd"]})
    >>> audit_csv(frame).decode()
    "time,user\\n2026-03-01T08:00:00.000+00:00,'=cmd\\n"
    """
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = (
                out[column]
                .dt.tz_convert("UTC")
                .map(lambda stamp: stamp.isoformat(timespec="milliseconds") if pd.notna(stamp) else "")
            )
        elif out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(_spreadsheet_safe)
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")
