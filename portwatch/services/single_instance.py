"""One desktop app per user (per data folder): a lock file plus a local socket.

The first instance holds a ``QLockFile`` in the runtime folder and listens on a
``QLocalServer``; a later launch fails to take the lock, sends ``show`` to the first
one and exits. A stale lock left by a crash is detected by ``QLockFile`` (dead pid).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from portwatch.services.os_integration import allow_foreground_activation

log = logging.getLogger(__name__)

SHOW_COMMAND = b"show\n"


def server_name(runtime_dir: Path) -> str:
    """A short socket name unique to this runtime folder (paths can exceed socket limits)."""
    digest = hashlib.sha256(str(runtime_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return f"portwatch-{digest}"


class SingleInstance(QObject):
    """Claims the instance lock; ``show_requested`` fires when a second launch asks."""

    show_requested = Signal()

    def __init__(self, runtime_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(runtime_dir / "portwatch.lock"))
        self._lock.setStaleLockTime(0)  # only a dead owner makes the lock stale
        self._name = server_name(runtime_dir)
        self._server: QLocalServer | None = None
        self._clients: set[QLocalSocket] = set()

    def claim(self) -> bool:
        """True when this process is now the only instance (and listens for others)."""
        if not self._lock.tryLock(100):
            return False
        # We hold the lock, so any socket with our name is a leftover from a crash.
        QLocalServer.removeServer(self._name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self._name):
            log.warning("cannot listen for other launches: %s", server.errorString())
        else:
            server.newConnection.connect(self._on_connection)
            self._server = server
        return True

    def notify_running(self, timeout_ms: int = 2000) -> bool:
        """Ask the running instance to show its window; True when it got the message."""
        socket = QLocalSocket()
        socket.connectToServer(self._name)
        if not socket.waitForConnected(timeout_ms):
            return False
        # Windows only lets the running instance raise its window if this one, which the
        # user just started and so holds the foreground, passes that right on.
        allow_foreground_activation()
        socket.write(SHOW_COMMAND)
        sent = socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return bool(sent)

    @Slot()
    def _on_connection(self) -> None:
        if self._server is None:
            return
        while (socket := self._server.nextPendingConnection()) is not None:
            self._clients.add(socket)
            socket.readyRead.connect(self._on_ready_read)
            socket.disconnected.connect(self._on_disconnected)
            if socket.bytesAvailable():
                self._read(socket)

    @Slot()
    def _on_ready_read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket) and socket in self._clients:
            self._read(socket)

    @Slot()
    def _on_disconnected(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket) and socket in self._clients:
            self._read(socket)  # what arrived just before the hang-up
            self._clients.discard(socket)
            socket.deleteLater()

    def _read(self, socket: QLocalSocket) -> None:
        data = bytes(socket.readAll().data())
        if SHOW_COMMAND.strip() in data:
            self.show_requested.emit()

    def release(self) -> None:
        """Stop listening and drop the lock (at quit)."""
        for socket in list(self._clients):
            socket.readyRead.disconnect(self._on_ready_read)
            socket.disconnected.disconnect(self._on_disconnected)
            socket.abort()
            socket.deleteLater()
        self._clients.clear()
        if self._server is not None:
            self._server.newConnection.disconnect(self._on_connection)
            self._server.close()
            self._server.deleteLater()
            self._server = None
        if self._lock.isLocked():
            self._lock.unlock()
