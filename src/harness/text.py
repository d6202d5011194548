"""Make text from a training script safe to show on the user's terminal."""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves, screen clears) and OSC sequences
# (window titles, hyperlinks), as terminals read them.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Return ``text`` without terminal escape sequences, other control characters
    shown as ``\\xNN``, and undecodable bytes shown as ``\\xNN`` too."""
    text = _ESCAPE.sub("", text)
    text = _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
