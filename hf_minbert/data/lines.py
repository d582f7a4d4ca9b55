"""A data file's lines, each decoded on its own, so that every problem names the line it is on.

Decoding line by line (rather than letting a buffered text stream decode 8 KB chunks) is what makes a
non-UTF-8 file's error name the line and character of its first bad byte: a chunk decoder fails "after
line N" wherever its buffer happened to end.
"""
import hashlib
from pathlib import Path

from .schema import DataError


class FileLines:
    """Iterate `(line number, text)` over each line of `path` that is not blank (numbered from 1, blank lines
    counted; line endings and a leading BOM removed); `.sha256` is the hex SHA-256 of the bytes the lines come
    from, taken as they are read: what a record of the data names is what was read, whatever becomes of the file
    after.

    Lines end at "\\n", "\\r\\n" or "\\r", as the `csv` module's do. A line that is not UTF-8 raises
    `DataError` naming the file, the line and the character where the bad byte is.
    """

    def __init__(self, path):
        path = Path(path)
        content = path.read_bytes()
        self.sha256 = hashlib.sha256(content).hexdigest()
        _check_plain_text(content, path)
        self._lines = _numbered_lines(content, path)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._lines)


def _check_plain_text(content: bytes, path):
    """Files that are not text line by line, named as what they are: the advice for latin-1 would ruin them."""
    if content.startswith(b"\x1f\x8b"):
        raise DataError(f"{path}: gzip-compressed, not text: decompress it first (gunzip)")
    start = content[:256]  # UTF-16 without its byte order mark: a NUL byte beside every ASCII character
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(start) >= 4 and start.count(0) >= len(start) // 3):
        raise DataError(f"{path}: UTF-16 text (as Excel's \"Unicode Text\" saves it), not UTF-8: convert it, e.g. "
                        "`iconv -f utf-16 -t utf-8`")


def _numbered_lines(content: bytes, path):
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():  # a blank line holds no row (editors leave them after the last one)
            continue
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
