"""Sending over MLLP: one connection for many messages, each awaited for its ACK.

python-hl7's asyncio MLLP client does the framing and parses the ACK. What this adds is
the discipline around it: an ACK must answer the message sent (MSA-2); `AA` (or `CA`) is
an acceptance, `AE`/`AR` a refusal whose text is kept; no ACK in time, a dropped
connection or a garbled answer means reconnect and send the same message again, after a
growing pause, a bounded number of times. The receiver deduplicates on the control id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import hl7
from hl7.mllp import InvalidBlockError, open_hl7_connection

ACCEPTED = {"AA", "CA"}
# Big enough for a treatment summary PDF in an ACK echo; python-hl7's default is 64 KiB.
READ_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    control_id: str
    code: str
    text: str

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED


class SendFailed(Exception):
    """The receiver did not answer a message after every retry; nothing after it was sent."""

    def __init__(self, control_id: str, attempts: int, reason: str):
        super().__init__(f"message {control_id} got no acknowledgement after {attempts} attempts: {reason}"
                         if attempts else f"stopped at message {control_id}: {reason}")
        self.control_id = control_id


class AckMismatch(Exception):
    pass


def read_answer(ack: hl7.Message, control_id: str) -> Answer:
    """MSA-1 code, MSA-3 text and any ERR texts, for the message we sent (MSA-2)."""
    try:
        msa = ack.segment("MSA")
    except KeyError:
        raise AckMismatch("the answer has no MSA segment") from None
    code, answered = str(msa(1)), str(msa(2))
    if answered != control_id:
        raise AckMismatch(f"ACK answers {answered!r}, not {control_id!r}")
    texts = [ack.unescape(str(msa(3)))] if len(msa) > 3 and str(msa(3)) else []
    for err in (s for s in ack if str(s[0]) == "ERR"):
        for index in (8, 7, 3):  # user message, diagnostic, error code (2.5); ERR-1 in older versions
            if len(err) > index and str(err[index]):
                texts.append(ack.unescape(str(err[index])).replace("^", " ").strip())
                break
        else:
            if len(err) > 1 and str(err[1]):
                texts.append(ack.unescape(str(err[1])).replace("^", " ").strip())
    return Answer(control_id, code, "; ".join(t for t in texts if t))


class MllpSender:
    def __init__(self, host: str, port: int, *, timeout: float = 10.0, attempts: int = 5,
                 backoff: float = 0.5, max_backoff: float = 8.0, deadline: float | None = None):
        self.host, self.port = host, port
        # Bounds the whole send (all messages), e.g. when a server sends on a user's request.
        self.deadline = deadline
        self.current = "-"  # the message being sent, to name it when the deadline passes
        self.timeout = timeout
        self.attempts = attempts
        self.backoff, self.max_backoff = backoff, max_backoff
        self.connections = 0  # how many times we (re)connected, for the report

    def send(self, messages: Iterable[tuple[str, str]], on_answer: Callable[[str, Answer], None]) -> None:
        """Send (control id, ER7) pairs in order; `on_answer` hears each ACK as it comes."""
        if self.deadline is None:
            asyncio.run(self._send(messages, on_answer))
            return
        try:
            asyncio.run(asyncio.wait_for(self._send(messages, on_answer), self.deadline))
        except (TimeoutError, asyncio.TimeoutError):
            raise SendFailed(self.current, 0, f"the send took longer than {self.deadline:g} s") from None

    async def _send(self, messages: Iterable[tuple[str, str]], on_answer: Callable[[str, Answer], None]) -> None:
        conn = None
        try:
            for control_id, er7 in messages:
                self.current = control_id
                data = er7.encode("utf-8")
                for attempt in range(1, self.attempts + 1):
                    try:
                        if conn is None:
                            conn = await asyncio.wait_for(
                                open_hl7_connection(self.host, self.port, limit=READ_LIMIT, encoding="utf-8"),
                                self.timeout)
                            self.connections += 1
                        reader, writer = conn
                        writer.writeblock(data)
                        await asyncio.wait_for(writer.drain(), self.timeout)
                        answer = read_answer(await asyncio.wait_for(reader.readmessage(), self.timeout), control_id)
                        break
                    except (TimeoutError, asyncio.TimeoutError, OSError, asyncio.IncompleteReadError,
                            InvalidBlockError, AckMismatch, ValueError) as exc:
                        await self._close(conn)
                        conn = None
                        if attempt == self.attempts:
                            raise SendFailed(control_id, attempt, describe(exc)) from None
                        await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
                on_answer(control_id, answer)
        finally:
            await self._close(conn)

    @staticmethod
    async def _close(conn) -> None:
        if conn is None:
            return
        writer = conn[1]
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (OSError, TimeoutError, asyncio.TimeoutError):
            pass


def describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the receiver closed the connection"
    return f"{type(exc).__name__}: {exc}"


class AnswerBook:
    """Collects answers and writes them to the log in batches (one event per batch), at least
    every `every` answers or `seconds`, and on `flush()`."""

    def __init__(self, record: Callable[[str, list[str], list[dict]], None], every: int = 500, seconds: float = 2.0):
        self.record = record
        self.every, self.seconds = every, seconds
        self.pending: dict[str, tuple[list[str], list[dict]]] = {}
        self.count = 0
        self.last = time.monotonic()

    def add(self, destination: str, answer: Answer, course: str | None = None) -> None:
        accepted, refused = self.pending.setdefault(destination, ([], []))
        if answer.accepted:
            accepted.append(answer.control_id)
        else:
            refused.append({"id": answer.control_id, "code": answer.code, "text": answer.text, "course": course})
        self.count += 1
        if self.count >= self.every or time.monotonic() - self.last > self.seconds:
            self.flush()

    def flush(self) -> None:
        for destination, (accepted, refused) in self.pending.items():
            if accepted or refused:
                self.record(destination, accepted, refused)
        self.pending.clear()
        self.count = 0
        self.last = time.monotonic()
