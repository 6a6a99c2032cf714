"""The one error type of the data package: a bad file or folder, named, with its problem, on one line."""

from __future__ import annotations

import os


def printable(text: object) -> str:
    """`text` as a str any console or browser can show: a file name that is not valid UTF-8 (its bytes
    kept by Python as surrogate escapes) gets backslash escapes instead of raising UnicodeEncodeError."""
    text = os.fsdecode(text) if isinstance(text, bytes) else str(text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class DataError(ValueError):
    """Bad input data. The message is one line: '<file>: <problem>'."""

    def __init__(self, path: object, problem: str):
        self.path = printable(path)
        self.problem = " ".join(printable(problem).split())  # keep it on one line
        super().__init__(f"{self.path}: {self.problem}")
