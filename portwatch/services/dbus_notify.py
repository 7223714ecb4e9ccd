"""Desktop notifications through ``org.freedesktop.Notifications`` on the session bus.

Spoken directly over D-Bus with ``jeepney`` (pure Python, no subprocess): QtDBus from
Python cannot send the ``uint32`` that ``Notify``'s ``replaces_id`` must be. The bus
socket is watched by a ``QSocketNotifier``, so nothing here blocks the event loop on
the notification server: ``Notify`` is sent and its reply (the server's id) is matched
when it arrives; only the bus daemon itself is asked, briefly, whether a server exists.

Escaping follows the specification: the summary is plain text, the body is markup when
the server says so (capability ``body-markup``). portwatch's titles never carry text
from a process; bodies do, so they are escaped exactly when the server would parse them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier

from portwatch import APP_ID, APP_NAME
from portwatch.core.alerts import Urgency
from portwatch.services.notify import NotificationBackend
from portwatch.services.plain_text import escaped

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
# The bus daemon answers at once; a server that is slower than this counts as absent.
BUS_TIMEOUT_S = 1.0
# How long a notification stays, in ms (-1: the server's default).
EXPIRE_MS = -1


class DBusNotificationBackend(NotificationBackend):
    """Notifications from the desktop's notification server (dunst, GNOME, Plasma, …)."""

    name = "desktop notification"

    def __init__(
        self, parent: QObject | None = None, *, bus: str = "SESSION", activate: bool = True
    ) -> None:
        super().__init__(parent)
        self._bus = bus
        # A server the bus would start on demand counts only when there is no other way
        # to show the alert (no tray): a server that fails to start loses what it was sent.
        self._activate = activate
        self._conn: Any = None
        self._notifier: QSocketNotifier | None = None
        self._sent: dict[int, int] = {}  # our message serial -> our token
        self._server_ids: dict[int, int] = {}  # the server's id -> our token
        self._capabilities: frozenset[str] | None = None
        self._serial = 0

    # -- the connection -------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        try:
            from jeepney import MatchRule, message_bus, new_method_call
            from jeepney.io.blocking import open_dbus_connection

            conn = open_dbus_connection(bus=self._bus, auth_timeout=BUS_TIMEOUT_S)
            rule = MatchRule(type="signal", interface=SERVICE, path=PATH)
            conn.send_and_get_reply(
                new_method_call(message_bus, "AddMatch", "s", (rule.serialise(),)),
                timeout=BUS_TIMEOUT_S,
            )
        except Exception as exc:  # no bus, no jeepney, a bus that refuses us: no back-end
            log.info("no D-Bus session for notifications: %s", exc)
            return None
        self._conn = conn
        self._serial = 1 << 20  # clear of the serials jeepney numbers its own calls with
        self._notifier = QSocketNotifier(conn.sock.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._readable)
        return conn

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _call(self, method: str, signature: str = "", body: tuple[Any, ...] = ()) -> Any:
        """A blocking call to the bus daemon or the server; None when it fails.

        What arrives meanwhile (the server's answer to an earlier ``Notify``, a click) is
        handled, not dropped: a lost ``Notify`` answer would make that click unknown.
        """
        from jeepney import DBusAddress, HeaderFields, MessageType, message_bus, new_method_call

        conn = self._connection()
        if conn is None:
            return None
        target = (
            message_bus
            if method in ("NameHasOwner", "ListActivatableNames")
            else DBusAddress(PATH, bus_name=SERVICE, interface=SERVICE)
        )
        serial = self._next_serial()
        deadline = time.monotonic() + BUS_TIMEOUT_S
        try:
            conn.send(new_method_call(target, method, signature or None, body), serial=serial)
            while True:
                message = conn.receive(timeout=max(0.0, deadline - time.monotonic()))
                if message.header.fields.get(HeaderFields.reply_serial) == serial:
                    break
                self._dispatch(message)
        except Exception as exc:  # a timeout, or the bus went away
            log.info("D-Bus call %s failed: %s", method, exc)
            if not isinstance(exc, TimeoutError):
                self.close()
            return None
        if message.header.message_type is not MessageType.method_return:
            return None
        return message.body

    # -- NotificationBackend ----------------------------------------------------------
    def available(self) -> bool:
        owned = self._call("NameHasOwner", "s", (SERVICE,))
        if owned is not None and owned[0]:
            return True
        if not self._activate:
            return False
        names = self._call("ListActivatableNames")
        return names is not None and SERVICE in names[0]

    def capabilities(self) -> frozenset[str]:
        """What the server says it can do (asked once)."""
        if self._capabilities is None:
            reply = self._call("GetCapabilities")
            if reply is None:
                return frozenset()
            self._capabilities = frozenset(str(c) for c in reply[0])
        return self._capabilities

    def body_for(self, text: str) -> str:
        """``text`` as the server will read it: escaped when it parses markup."""
        return escaped(text) if "body-markup" in self.capabilities() else text

    def show(self, token: int, title: str, text: str, urgency: Urgency) -> None:
        from jeepney import DBusAddress, new_method_call

        conn = self._connection()
        if conn is None:
            return
        body = self.body_for(text)
        actions = ["default", "Open portwatch"] if "actions" in self.capabilities() else []
        hints = {
            "urgency": ("y", 1 if urgency is Urgency.NORMAL else 0),
            "desktop-entry": ("s", APP_ID),
        }
        message = new_method_call(
            DBusAddress(PATH, bus_name=SERVICE, interface=SERVICE),
            "Notify",
            "susssasa{sv}i",
            (APP_NAME, 0, "portwatch", title, body, actions, hints, EXPIRE_MS),
        )
        serial = self._next_serial()
        try:
            conn.send(message, serial=serial)
        except OSError as exc:
            log.warning("cannot reach the notification service: %s", exc)
            self.close()
            return
        self._sent[serial] = token
        while len(self._sent) > 256:  # replies that never came
            self._sent.pop(next(iter(self._sent)))

    # -- what comes back ----------------------------------------------------------------
    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        while self._conn is not None:
            try:
                message = conn.receive(timeout=0)
            except TimeoutError:
                break
            except Exception as exc:  # the bus went away
                log.info("the D-Bus session ended: %s", exc)
                self.close()
                return
            self._dispatch(message)

    def _dispatch(self, message: Any) -> None:
        """An answer to ``Notify`` (the server's id) or a signal (a click, a close)."""
        from jeepney import HeaderFields, MessageType

        kind = message.header.message_type
        fields = message.header.fields
        if kind in (MessageType.method_return, MessageType.error):
            token = self._sent.pop(fields.get(HeaderFields.reply_serial), None)
            if token is None:
                return
            if kind is MessageType.error:
                log.warning("the notification service refused a notification: %s", message.body)
            else:
                self._server_ids[int(message.body[0])] = token
            return
        if kind is not MessageType.signal or fields.get(HeaderFields.interface) != SERVICE:
            return
        member = fields.get(HeaderFields.member)
        if member == "ActionInvoked":
            server_id, action = message.body
            token = self._server_ids.get(int(server_id))
            if token is not None and action == "default":
                self.clicked.emit(token)
        elif member == "NotificationClosed":
            self._server_ids.pop(int(message.body[0]), None)
