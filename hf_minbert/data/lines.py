"""A data file's lines, each decoded on its own, so that every problem names the line it is on.

Decoding line by line (rather than letting a buffered text stream decode 8 KB chunks) is what makes a
non-UTF-8 file's error name the line and character of its first bad byte: a chunk decoder fails "after
line N" wherever its buffer happened to end.
"""
import hashlib
from pathlib import Path

from .schema import DataError


class FileLines:
    """Iterate `(line number, text)` over each line of `path` (from 1; line endings and a leading BOM removed) up
    to its last line that is not blank; `.sha256` is the hex SHA-256 of the bytes the lines come from, taken as
    they are read: what a record of the data names is what was read, whatever becomes of the file after.

    Lines end at "\\n", "\\r\\n" or "\\r", as the `csv` module's do. A line that is not UTF-8 raises
    `DataError` naming the file, the line and the character where the bad byte is.
    """

    def __init__(self, path):
        path = Path(path)
        content = path.read_bytes()
        self.sha256 = hashlib.sha256(content).hexdigest()
        self._lines = _numbered_lines(content, path)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._lines)


def _numbered_lines(content: bytes, path):
    raws = content.splitlines()
    while raws and not raws[-1].strip():  # blank lines after the last row, as editors leave them, hold no row
        raws.pop()
    for number, raw in enumerate(raws, start=1):
        text = _decode(raw, path, number)
        yield number, text.lstrip("\ufeff") if number == 1 else text


def _decode(raw: bytes, path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        character = len(raw[: error.start].decode("utf-8", errors="replace")) + 1
        raise DataError(
            f"{path}, line {number}, character {character}: not UTF-8 text (byte 0x{raw[error.start]:02x}); "
            "the file may be latin-1 or cp1252: convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
