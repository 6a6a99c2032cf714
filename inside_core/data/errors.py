"""The one error type of the data package: a bad file or folder, named, with its problem, on one line."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. The message is one line: '<file>: <problem>'."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # keep it on one line
        super().__init__(f"{self.path}: {self.problem}")
