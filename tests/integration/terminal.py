"""``chat-cli open`` as its own process on a pseudo-terminal, as a person runs it: what it draws is read all along
(a full pty would stall it), keys are typed into it, and Ctrl-D ends it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

ESCAPES = re.compile(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMNOc])")
ROWS, COLUMNS = 30, 140


@dataclass
class Terminal:
    process: subprocess.Popen[bytes]
    fd: int
    drawn: bytearray = field(default_factory=bytearray)

    @classmethod
    def open_room(cls, *, server: str, config: Path, room: str, transcript: Path) -> Terminal:
        """Start ``chat-cli open ROOM`` on a fresh 30×140 terminal, writing its transcript to ``transcript``."""
        main_fd, child_fd = pty.openpty()
        fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")} | {"TERM": "xterm-256color"}
        argv = ["--server", server, "--config", str(config), "open", room, "--transcript", str(transcript)]
        process = subprocess.Popen(
            [sys.executable, "-m", "chat_cli", *argv],
            stdin=child_fd,
            stdout=child_fd,
            stderr=child_fd,
            env=env,
            start_new_session=True,
        )
        os.close(child_fd)
        terminal = cls(process, main_fd)
        asyncio.get_running_loop().add_reader(main_fd, terminal._read)
        return terminal

    def _read(self) -> None:
        try:
            self.drawn.extend(os.read(self.fd, 65536))
        except OSError:  # the child has gone: nothing more to read
            asyncio.get_running_loop().remove_reader(self.fd)

    def text(self) -> str:
        """Everything drawn so far, without the terminal's control sequences."""
        return ESCAPES.sub(b"", bytes(self.drawn)).decode(errors="replace")

    async def shows(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert time.monotonic() < deadline, f"{text!r} not on screen: {self.text()[-3000:]!r}"
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.text()[-3000:]!r}"
            await asyncio.sleep(0.05)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    async def close(self) -> int:
        """Ctrl-D, then its exit code (it is killed if it does not leave within 20 s)."""
        try:
            if self.process.poll() is None:
                self.type("\x04")
            return await asyncio.to_thread(self.process.wait, 20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
