"""Progress bars with counts (tqdm) for the stages of the demo load; silent when disabled."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    def __init__(self, *, enabled: bool = False, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr

    def iterate(self, items: Iterable[T], *, desc: str, unit: str, total: int | None = None) -> Iterator[T]:
        yield from tqdm(items, desc=desc, unit=unit, total=total, disable=not self.enabled, file=self.stream)

    def bar(self, *, total: int, desc: str, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.enabled, file=self.stream)

    @contextmanager
    def stage(self, desc: str) -> Iterator[None]:
        """A one-step bar for a stage that cannot count its work (it still shows the time)."""
        with self.bar(total=1, desc=desc, unit="步") as bar:
            yield
            bar.update()


SILENT = Progress()
