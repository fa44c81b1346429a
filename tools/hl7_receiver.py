"""An independent MLLP receiver for the tests and the drill: python-hl7's asyncio server on 127.0.0.1,
in a thread, answering each message as a `policy` says: ("AA"|"AE"|"AR", text), "drop"
(close the connection without an answer) or "silent" (never answer)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import hl7
from hl7.mllp import start_hl7_server

Policy = Callable[[hl7.Message, int], object]


def accept_all(message: hl7.Message, seen: int) -> object:
    return ("AA", "")


class Receiver:
    def __init__(self, policy: Policy = accept_all):
        self.policy = policy
        self.received: list[str] = []  # control ids, in arrival order, repeats included
        self.messages: dict[str, hl7.Message] = {}
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            start_hl7_server(self.handle, "127.0.0.1", 0, limit=64 * 1024 * 1024, encoding="utf-8"), self.loop
        ).result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def handle(self, reader, writer) -> None:
        self.connections += 1
        try:
            while True:
                message = await reader.readmessage()
                control_id = str(message.segment("MSH")[10])
                seen = self.received.count(control_id)
                self.received.append(control_id)
                self.messages[control_id] = message
                action = self.policy(message, seen)
                if action == "drop":
                    writer.close()
                    return
                if action == "silent":
                    continue
                code, text = action
                ack = str(message.create_ack(code, message_id=f"ACK{len(self.received)}")).rstrip("\r")
                if text and code == "AR":  # the reason in ERR-8 (user message), as 2.5 puts it
                    ack += f"\rERR||||E||||{message.escape(text)}"
                elif text:
                    ack += f"|{message.escape(text)}"
                writer.writeblock((ack + "\r").encode("utf-8"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
