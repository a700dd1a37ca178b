"""The files dropped into watched folders, by SHA-256: the same file dropped twice into one schedule's
folder is handed off once (the second copy is rejected, naming the batch of the first), and each batch
started from a folder waits here until its results are written beside the processed file.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .schema import dropped_files


class DroppedFiles:
    """What each watched folder took, and where each batch's results go (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, schedule: str, sha256: str, name: str) -> dict[str, Any] | None:
        """Claim a dropped file for hand-off by its SHA-256.

        Returns:
            ``None`` when the file is new to this schedule (or an earlier claim never got its batch: a
            beat stopped mid-hand-off, and handing it off again resumes it); else the earlier file's row
            (``name``, ``batch_id``, ``dropped_at``).
        """
        c = dropped_files.c
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(dropped_files).values(schedule=schedule, sha256=sha256, name=name,
                                                          dropped_at=time.time()))
            return None
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            row = conn.execute(select(dropped_files).where(c.schedule == schedule, c.sha256 == sha256)).first()
            if row is None or row.batch_id is None:
                conn.execute(delete(dropped_files).where(c.schedule == schedule, c.sha256 == sha256))
                conn.execute(insert(dropped_files).values(schedule=schedule, sha256=sha256, name=name,
                                                          dropped_at=time.time()))
                return None
        return dict(row._mapping)

    def handed_off(self, schedule: str, sha256: str, batch_id: str, processed_path: str) -> None:
        """The claimed file became ``batch_id`` and now lies at ``processed_path``."""
        c = dropped_files.c
        with self.engine.begin() as conn:
            conn.execute(update(dropped_files).where(c.schedule == schedule, c.sha256 == sha256)
                         .values(batch_id=batch_id, processed_path=processed_path))

    def forget(self, schedule: str, sha256: str) -> None:
        """Drop a claim whose file was rejected (dropping it again, fixed or not, tries it again)."""
        c = dropped_files.c
        with self.engine.begin() as conn:
            conn.execute(delete(dropped_files).where(c.schedule == schedule, c.sha256 == sha256))

    def awaiting_results(self) -> list[dict[str, Any]]:
        """Batches started from folders whose results are not written yet."""
        c = dropped_files.c
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(dropped_files).where(
                c.batch_id.is_not(None), c.results_path.is_(None)).order_by(c.id))]

    def results_written(self, row_id: int, path: str) -> None:
        """The batch's results export lies at ``path``."""
        with self.engine.begin() as conn:
            conn.execute(update(dropped_files).where(dropped_files.c.id == row_id).values(results_path=path))
