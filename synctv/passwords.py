"""Password hashing off the reactor, on a thread pool of its own with a bounded queue.

scrypt is deliberately slow (tens of milliseconds of CPU per check). Run on the reactor's shared
thread pool, a flood of logins would queue ahead of everything else that pool does (the proxy's
upstream name lookups, file work), so ``PasswordHasher`` owns a small pool (``[auth]
hash_threads``, default 2) and refuses work past ``hash_queue`` waiting checks with 503
``unavailable`` at once, instead of letting the queue, and every caller's wait, grow without
bound. The pool starts on first use and stops at reactor shutdown (or ``stop()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from synctv.core import auth
from synctv.core.errors import Unavailable

_T = TypeVar("_T")


class PasswordHasher:
    def __init__(
        self, *, threads: int = 2, queue: int = 64, scrypt_n: int = auth.SCRYPT_N, reactor: Any = None,
    ) -> None:
        self.threads = threads
        self.queue = queue
        self.scrypt_n = scrypt_n
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self.pending = 0  # checks queued or running
        self.runs = 0  # hashes and checks started, ever (what a throttled attempt never adds to)

    def _ensure_pool(self) -> tuple[Any, ThreadPool]:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        if self._pool is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=self.threads, name="synctv-passwords")
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._reactor, self._pool

    def _run(self, f: Callable[..., _T], *args: Any, **kwargs: Any) -> Deferred[_T]:
        if self.pending >= self.threads + self.queue:
            return fail(Unavailable("the server is busy checking passwords; try again in a moment"))
        reactor, pool = self._ensure_pool()
        self.pending += 1
        self.runs += 1

        def done(result: Any) -> Any:
            self.pending -= 1
            return result

        return deferToThreadPool(reactor, pool, f, *args, **kwargs).addBoth(done)

    def hash(self, password: str) -> Deferred[str]:
        return self._run(auth.hash_password, password, n=self.scrypt_n)

    def verify(self, password: str, encoded: str) -> Deferred[bool]:
        return self._run(auth.verify_password, password, encoded).addCallback(bool)

    def stop(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()
