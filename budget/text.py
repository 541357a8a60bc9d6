"""Text safe to show: control characters made visible (no dependencies; the lowest layer, beside
budget.errors, so the catalog reader, the renderers and the CLI all use this one helper)."""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 control characters, DEL, and the Unicode bidirectional overrides and isolates: on a
# terminal they move the cursor, clear the screen or reorder what follows (Trojan Source)
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any, keep_newlines: bool = False) -> str:
    """`text` with every control character written as a visible escape (ESC -> \\x1b, NUL ->
    \\x00, U+202E -> \\u202e): the one helper for text shown on a terminal or written into
    Markdown/HTML, so a name read from a file can neither move the cursor nor hide what follows.
    Newlines stay when `keep_newlines` (a rendered table); otherwise they are escaped too."""
    def escape(m: re.Match[str]) -> str:
        ch = m.group(0)
        if keep_newlines and ch == "\n":
            return ch
        return f"\\x{ord(ch):02x}" if ord(ch) <= 0xFF else f"\\u{ord(ch):04x}"
    return CONTROL_CHARS.sub(escape, str(text))


def has_control(text: str) -> bool:
    """Whether `text` holds a control character `printable` would escape."""
    return CONTROL_CHARS.search(text) is not None
