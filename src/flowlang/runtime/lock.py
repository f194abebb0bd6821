"""The per-flow run lock: two runs of one flow never overlap (the second fails at once)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import TracebackType

from flowlang.errors import LockedError, StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FlowLock:
    """An exclusive, non-blocking lock file per flow in the state folder (released when the process dies)."""

    def __init__(self, folder: Path, flow: str, name: str | None = None) -> None:
        """`name`: the lock file's own name (serve's), else one made from the flow's."""
        self.path = folder / (name or f"{hashlib.sha256(flow.encode()).hexdigest()[:16]}.lock")
        self.flow = flow
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(f"cannot create the run lock {self.path}: {e.strerror}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise LockedError(f"another run of '{self.flow}' is in progress (lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FlowLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
