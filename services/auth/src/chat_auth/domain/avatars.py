"""Avatar images: the bytes decide the type (never the client's Content-Type), and only raster formats pass."""

from __future__ import annotations

from chat_auth.domain.errors import AuthError

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
)


def sniff_image(data: bytes, *, max_bytes: int) -> str:
    """The image type of ``data`` (PNG, JPEG, GIF or WebP) or AuthError. SVG and anything else is refused,
    because a browser could run script in it."""
    if not data:
        raise AuthError("avatar_empty", "Upload an image.", status=422)
    if len(data) > max_bytes:
        raise AuthError("payload_too_large", f"Avatars are limited to {max_bytes} bytes.", status=413)
    for signature, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise AuthError("avatar_unsupported_type", "Use a PNG, JPEG, GIF or WebP image.", status=415)
