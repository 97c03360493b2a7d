"""Records of a CSV byte stream, parsed as the bytes arrive: memory holds one network chunk and one record.

A network chunk ends anywhere — inside a line, inside a UTF-8 character, inside a quoted field that spans
lines. Bytes are decoded incrementally, a trailing partial line waits for the next chunk, and lines are joined
until their quotes balance (RFC 4180 doubles a quote inside a quoted field, so a record is complete exactly
when it holds an even number of quotes). Only complete records reach the `csv` module.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterable, AsyncIterator

MAX_RECORD_CHARS = 1 << 20


class CsvFormatError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


async def csv_records(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, list[str]]]:
    """Each record with the line it starts on (from 1); a blank line is an empty record."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # -sig: a byte order mark (Excel writes one) is not data
    records = _Records()
    async for chunk in chunks:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # The records before the bad byte are good; the line it is on is not.
            for record in records.feed(exc.object[:exc.start].decode("utf-8")):
                yield record
            raise CsvFormatError(records.line + 1, "the file is not UTF-8") from None
        for record in records.feed(text):
            yield record
    try:
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CsvFormatError(records.line + 1, "the file ends inside a UTF-8 character") from None
    for record in records.feed(text, final=True):
        yield record


class _Records:
    def __init__(self) -> None:
        self.pending = ""  # the text after the last line break
        self.open: list[str] = []  # the lines of a record whose quotes do not balance yet
        self.quotes = 0
        self.line = 0  # lines completed so far
        self.start = 1

    def feed(self, text: str, final: bool = False) -> list[tuple[int, list[str]]]:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if final and self.pending:
            lines.append(self.pending)
            self.pending = ""
        if len(self.pending) > MAX_RECORD_CHARS:
            raise CsvFormatError(self.line + 1, f"the line is longer than {MAX_RECORD_CHARS:,} characters")
        complete: list[str] = []
        starts: list[int] = []
        for line in lines:
            self.line += 1
            if not self.open:
                self.start = self.line
            self.open.append(line)
            self.quotes += line.count('"')
            if self.quotes % 2 == 0:
                complete.append("\n".join(self.open))
                starts.append(self.start)
                self.open, self.quotes = [], 0
            elif sum(map(len, self.open)) > MAX_RECORD_CHARS:
                raise CsvFormatError(self.start, f"the record is longer than {MAX_RECORD_CHARS:,} characters")
        if final and self.open:
            raise CsvFormatError(self.start, "a quoted field is never closed")
        reader = csv.reader(complete)
        try:
            return list(zip(starts, reader, strict=True))
        except csv.Error as exc:  # reader.line_num: how many records it has read, the bad one included
            raise CsvFormatError(starts[reader.line_num - 1], str(exc)) from None
