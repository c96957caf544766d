"""train.log: everything the driver prints, also written to the run directory.

    with DriverLog() as log:          # from the first line the run prints
        ...                           # output is held in memory until the run directory exists
        log.attach(run_dir / "train.log")

stdout and stderr stay as they are (a terminal keeps its progress bar); the file gets the same text, minus the
bar's in-place redraws (chunks holding a carriage return), which are unreadable in a file, and colour codes. Worker output that
Ray forwards to the driver passes through the driver's sys.stdout/sys.stderr and is logged too; output that
C++ code writes straight to file descriptor 1/2 of the driver process is not.
"""
from __future__ import annotations

import io
import re
import sys
import traceback
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Tee(io.TextIOBase):
    def __init__(self, stream, log: "DriverLog"):
        self.stream, self.log = stream, log
        self._drop_newline = False

    def write(self, s: str) -> int:
        self.stream.write(s)
        if "\r" in s:  # a redraw, and the newline print() writes after it
            self._drop_newline = True
        elif s == "\n" and self._drop_newline:
            self._drop_newline = False
        else:
            self.log.write_file(ANSI.sub("", s))  # Ray colours its worker prefixes: plain text in the file
            self._drop_newline = False
        return len(s)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush_file()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def buffer(self):  # bytes written here reach the terminal only
        return self.stream.buffer

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", "utf-8")


class DriverLog:
    """Tees sys.stdout and sys.stderr into a file once `attach` names it; text printed earlier is kept for it."""

    def __init__(self):
        self._held: list[str] = []
        self._file = None

    def __enter__(self) -> "DriverLog":
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, self), _Tee(sys.stderr, self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        sys.stdout, sys.stderr = self._saved
        if self._file is not None:
            if exc is not None:  # the caller reports it on stderr after this block; the file gets it here
                self._file.write("".join(traceback.format_exception(exc_type, exc, tb)))
            self._file.close()
            self._file = None

    def attach(self, path: Path) -> None:
        """Start writing to `path` (appended: a resumed run continues its log), beginning with the held text."""
        self._file = open(path, "a", encoding="utf-8")
        self._file.write("".join(self._held))
        self._held = []
        self._file.flush()

    def write_file(self, s: str) -> None:
        if self._file is None:
            self._held.append(s)
        else:
            self._file.write(s)

    def note(self, line: str) -> None:
        """A line for the file only (progress when the terminal shows a bar instead)."""
        self.write_file(line + "\n")
        self.flush_file()

    def flush_file(self) -> None:
        if self._file is not None:
            self._file.flush()
