"""A QR code drawn with text, for scanning off the terminal: the ``otpauth://`` URI of a two-factor set-up."""

from __future__ import annotations

import io

import segno


def qr_text(data: str) -> str:
    """``data`` as a QR code in Unicode half blocks, two modules a character high, with the standard quiet zone.

    Light modules are drawn (``█``) and dark ones left blank, which reads right on the usual light-on-dark
    terminal. A dark-on-light terminal shows the code inverted, which not every scanner reads: the set-up prints
    the secret beside it for typing in by hand."""
    drawn = io.StringIO()
    segno.make(data, error="m").terminal(out=drawn, compact=True)
    return drawn.getvalue().rstrip("\n")
