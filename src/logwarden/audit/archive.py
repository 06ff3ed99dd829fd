"""The one zip layout a transcript package may have: written, and checked before it is read.

A zip file can be read two ways: from the central directory at its end (Python's zipfile and
most tools) or front to back, local header after local header (streaming readers such as
Java's ZipInputStream). A file built so that the two disagree shows one reader the verified
transcript and another a forged one. A package therefore has one canonical layout, in which
both ways find the same members with the same bytes, and anything else is refused, saying
what is wrong (docs/audit.md, Transcript packages):

- the first member's local header at offset 0: no prefix;
- each member's local header, its data, then the next member's, in the central directory's
  order, with no gap: nothing hidden between them;
- the central directory right after the last member's data, and its end record as the last
  22 bytes of the file: no archive comment, nothing after it;
- each local header saying exactly what its central directory entry says; no extra field,
  comment, encryption, data descriptor (general-purpose flags all zero), ZIP64 or second
  disk; a plain file;
- each member stored, or deflated in one stream that ends exactly where its data ends (a
  streaming reader follows the stream, not the sizes).

``write`` makes that layout and ``members`` checks it, reading no compressed data; ``read``
inflates one member, never past the size the caller allows.
"""

from __future__ import annotations

import stat
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from logwarden.errors import AuditVerificationError

__all__ = ["Member", "check_size", "members", "read", "write"]

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # signature … name length, extra length
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # signature … local header offset
_END = struct.Struct("<IHHHHIIH")  # signature … comment length
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
STORED, DEFLATED = 0, 8
_VERSION = 20  # 2.0: deflate; ZIP64 needs 4.5
_MADE_BY = (3 << 8) | _VERSION  # Unix, so that the file attributes below mean what they say
_FILE = (stat.S_IFREG | 0o644) << 16  # a plain file, rw-r--r--


@dataclass(frozen=True, slots=True)
class Member:
    """A member as the central directory and its local header (which agree) describe it."""

    name: str
    method: int
    crc: int
    size: int  # uncompressed, as declared: ``read`` holds the data to it
    start: int  # where its data begins in the file
    length: int  # its data's length (compressed)


# -- writing ----------------------------------------------------------------------------------


def write(files: list[tuple[str, bytes]], *, at_ms: int) -> bytes:
    """A zip of ``files``, deflated, in the canonical layout; ``at_ms`` dates each member."""
    date, time = _dos_time(at_ms)
    parts: list[bytes] = []
    directory: list[bytes] = []
    offset = 0
    for name, content in files:
        encoded = name.encode("ascii")
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = deflater.compress(content) + deflater.flush()
        fields = (_VERSION, 0, DEFLATED, time, date, zlib.crc32(content), len(data), len(content))
        local = _LOCAL.pack(_LOCAL_SIG, *fields, len(encoded), 0) + encoded
        directory.append(
            _CENTRAL.pack(_CENTRAL_SIG, _MADE_BY, *fields, len(encoded), 0, 0, 0, 0, _FILE, offset)
            + encoded
        )
        parts += [local, data]
        offset += len(local) + len(data)
    central = b"".join(directory)
    end = _END.pack(_END_SIG, 0, 0, len(files), len(files), len(central), offset, 0)
    return b"".join([*parts, central, end])


def _dos_time(at_ms: int) -> tuple[int, int]:
    """MS-DOS date and time (UTC, two-second steps), clamped to the years it can say."""
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    return date, (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)


# -- checking the layout -----------------------------------------------------------------------


def _refuse(what: str) -> AuditVerificationError:
    return AuditVerificationError(f"the archive is not laid out as a package is: {what}")


def members(data: bytes) -> list[Member]:
    """The members of ``data`` in order, once its layout is the canonical one; raises
    ``AuditVerificationError`` naming the first thing that is not."""
    count, directory_at, directory_size = _end_record(data)
    entries = _central_directory(data, directory_at, directory_size, count)
    found: list[Member] = []
    position = 0  # where the next local header must begin
    for entry, header in entries:
        offset = header[-1]
        if offset != position:
            raise _refuse(_misplaced(data, entry.name, offset, position))
        member = _local_header(data, offset, entry, header)
        if member.start + member.length > directory_at:
            raise _refuse(f"{entry.name}'s data runs into the central directory")
        found.append(member)
        position = member.start + member.length
    if position != directory_at:
        raise _refuse(
            f"{directory_at - position} bytes lie between the last member and the central "
            "directory, where a reader going front to back finds members the directory does "
            "not list"
        )
    return found


def _misplaced(data: bytes, name: str, offset: int, expected: int) -> str:
    """Why a member's local header is not at ``expected``, where the one before it ends."""
    if expected == 0 and not data.startswith(b"PK\x03\x04"):
        return f"{offset} bytes come before the first member ({name}): a package starts with it"
    if expected == 0:
        return (
            f"the central directory lists {name} first, but the file does not start with it: "
            "members are in the central directory's order"
        )
    return (
        f"{name} is at offset {offset}, not right after the member before it ({expected}): "
        "members follow one another in the central directory's order, with nothing between"
    )


def _end_record(data: bytes) -> tuple[int, int, int]:
    """(members, central directory offset, its size) from the end record, which must be the
    file's last 22 bytes."""
    at = len(data) - _END.size
    if at < 0 or _END.unpack_from(data, at)[0] != _END_SIG:
        # Somewhere before the end (a comment or bytes after it), or nowhere: not a zip.
        if data.rfind(b"PK\x05\x06", max(0, at - 0xFFFF)) < 0:
            raise AuditVerificationError("not a transcript package (not a zip file)")
        raise _refuse("the archive has a comment or bytes after its end record")
    _sig, disk, directory_disk, here, total, size, offset, comment = _END.unpack_from(data, at)
    if comment:
        raise _refuse("the archive has a comment")
    if disk or directory_disk or here != total:
        raise _refuse("the archive says it spans several disks")
    if offset + size != at:
        raise _refuse(
            "the central directory does not end where the end record begins (bytes were "
            "added before or inside it, or the end record lies about it)"
        )
    return total, offset, size


def _central_directory(
    data: bytes, at: int, size: int, count: int
) -> list[tuple[Member, tuple[int, ...]]]:
    """Each central directory entry as a ``Member`` (start, length still to be found) with
    the fields its local header must repeat, plus its local header's offset last."""
    entries: list[tuple[Member, tuple[int, ...]]] = []
    position, end = at, at + size
    for _ in range(count):
        if position + _CENTRAL.size > end:
            raise _refuse("the central directory is shorter than its end record says")
        fields = _CENTRAL.unpack_from(data, position)
        (sig, _made_by, version, flags, method, time, date, crc, length, declared) = fields[:10]
        name_length, extra, comment, disk, _internal, external, offset = fields[10:]
        name_at = position + _CENTRAL.size
        if sig != _CENTRAL_SIG or name_at + name_length > end:
            raise _refuse("the central directory is damaged (an entry without its signature)")
        name = _name(data[name_at : name_at + name_length])
        _check_entry(name, version, flags, method, extra, comment, disk, external)
        member = Member(name, method, crc, declared, 0, length)
        header = (version, flags, method, time, date, crc, length, declared, name_length, offset)
        entries.append((member, header))
        position = name_at + name_length
    if position != end:
        raise _refuse("the central directory holds more than its end record says")
    return entries


def _name(raw: bytes) -> str:
    """A member's name: printable ASCII, as every name a package holds is."""
    if not all(0x20 <= byte < 0x7F for byte in raw):
        raise _refuse(f"a member's name is not printable ASCII ({raw[:40]!r})")
    return raw.decode("ascii")


def _check_entry(
    name: str,
    version: int,
    flags: int,
    method: int,
    extra: int,
    comment: int,
    disk: int,
    external: int,
) -> None:
    """One central directory entry: only what a package's writer (``write``) puts there."""
    if flags & 0x1:
        raise _refuse(f"{name} is encrypted")
    if flags & 0x8:
        raise _refuse(f"{name} uses a data descriptor (its sizes are not in its local header)")
    if flags:
        raise _refuse(f"{name} has general-purpose flags {flags:#06x} (a package uses none)")
    if method not in (STORED, DEFLATED):
        raise _refuse(f"{name} uses compression method {method} (a package's are 0 and 8)")
    if version > _VERSION:
        raise _refuse(f"{name} needs zip version {version / 10} (ZIP64 or another extension)")
    if extra or comment:
        raise _refuse(f"{name} carries an {'extra field' if extra else 'entry comment'}")
    if disk:
        raise _refuse(f"{name} says it is on another disk")
    mode = external >> 16
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG) or mode & 0o7111 or external & 0x10:
        raise _refuse(f"{name} is not a plain file (mode {mode:#o}: a link, directory or program)")


def _local_header(data: bytes, offset: int, entry: Member, header: tuple[int, ...]) -> Member:
    if offset + _LOCAL.size > len(data) or _LOCAL.unpack_from(data, offset)[0] != _LOCAL_SIG:
        raise _refuse(f"there is no local header where the central directory puts {entry.name}")
    fields = _LOCAL.unpack_from(data, offset)
    name_at = offset + _LOCAL.size
    name_length, extra = fields[-2], fields[-1]
    named = data[name_at : name_at + name_length]
    if fields[1:-1] != header[:-1] or named != entry.name.encode("ascii"):
        raise _refuse(
            f"{entry.name}'s local header differs from its central directory entry (name, "
            "sizes, CRC, method, flags or time): readers would disagree on what it holds"
        )
    if extra:
        raise _refuse(f"{entry.name}'s local header carries an extra field")
    start = name_at + name_length
    return Member(entry.name, entry.method, entry.crc, entry.size, start, entry.length)


# -- reading a member ------------------------------------------------------------------------------


def check_size(member: Member, limit: int) -> None:
    """Refuse a member declaring more than ``limit`` bytes, before it is inflated."""
    if member.size > limit:
        raise AuditVerificationError(
            f"{member.name} is too large ({member.size} bytes; at most {limit} in this package)"
        )


def read(data: bytes, member: Member, *, limit: int) -> bytes:
    """A member's content, inflated to at most ``limit`` bytes (a zip bomb stops there), and
    checked: exactly its declared size, its CRC, and a deflate stream that ends with its data.
    """
    name = member.name
    check_size(member, limit)
    raw = memoryview(data)[member.start : member.start + member.length]
    if member.method == STORED:
        content = bytes(raw)
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        content = inflater.decompress(raw, member.size + 1)
        if len(content) > member.size:
            raise AuditVerificationError(
                f"{name} inflates to more than the {member.size} bytes its header declares"
            )
        if not inflater.eof or inflater.unconsumed_tail:
            raise AuditVerificationError(f"{name}'s compressed data is cut short")
        if inflater.unused_data:
            raise _refuse(
                f"{len(inflater.unused_data)} bytes follow the end of {name}'s compressed "
                "stream, where a reader going front to back looks for the next member"
            )
    if len(content) != member.size:
        raise AuditVerificationError(
            f"{name} holds {len(content)} bytes, not the {member.size} its header declares"
        )
    if zlib.crc32(content) != member.crc:
        raise AuditVerificationError(f"{name} does not match its CRC: it is damaged")
    return content
