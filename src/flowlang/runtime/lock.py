"""The per-flow run lock: two runs of one flow never overlap (the second fails at once)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from types import TracebackType

from flowlang.errors import LockedError, StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


PROBE_WAIT = 0.01  # seconds between two tries of a patient acquire


class FlowLock:
    """An exclusive, non-blocking lock file per flow in the state folder (released when the process dies)."""

    def __init__(self, folder: Path, flow: str, name: str | None = None) -> None:
        """`name`: the lock file's own name (serve's), else one made from the flow's."""
        self.path = folder / (name or f"{hashlib.sha256(flow.encode()).hexdigest()[:16]}.lock")
        self.flow = flow
        self._fd: int | None = None

    def acquire(self, patience: float = 0.0, shared: bool = False) -> None:
        """Take the lock, else LockedError; `patience`: seconds to keep trying first (a `held()` probe holds
        it for a moment: a serve starting then was refused as if another one served); `shared`: beside
        other shared holders, never beside an exclusive one."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(f"cannot create the run lock {self.path}: {e.strerror}") from None
        if fcntl is not None:
            deadline = time.monotonic() + patience
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() < deadline:
                        time.sleep(PROBE_WAIT)
                        continue
                    os.close(fd)
                    raise LockedError(f"another run of '{self.flow}' is in progress (lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def held(self) -> bool:
        """Whether a process holds the lock now. Asked with a shared lock taken and let go at once, with no
        write (acquire() wrote the asker's pid into the file) and no file made where there is none. flock
        has no test that takes nothing; the moment it is held, an acquire(patience=...) rides out, and two
        askers never stop each other."""
        if fcntl is None:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise StoreError(f"cannot read the lock {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing lets go of the shared lock
        return False

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
