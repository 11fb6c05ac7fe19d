"""What a line typed in the room view does: a message, or a /command (reply, edit, delete, react, download, away…);
apart from the connection (interactive.py), which it drives through the view, and from what the view shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat_cli import files
from chat_cli.errors import CliError, Refused
from chat_cli.room_state import RoomState

if TYPE_CHECKING:
    from chat_cli.interactive import RoomView

HELP = (
    "commands: /quit  /reply SEQ TEXT  /edit SEQ TEXT  /delete SEQ  /react SEQ EMOJI  /unreact SEQ EMOJI  "
    "/download SEQ  /away  /back  /help   (Ctrl-D quits)"
)


def presence_note(*, away: bool, seen_as: str) -> str:
    """What /away and /back say: this device's status, and what the others see when another device decides it."""
    if away and seen_as == "online":
        return "you are away here; others still see you online because another device is active"
    if away:
        return "you are away; others see you as away"
    return "you are online"


async def run_command(view: RoomView, text: str) -> None:
    """Handle one typed line: a message, or a /command."""
    if not text.startswith("/") or text.startswith("//"):
        await view.send(text[1:] if text.startswith("//") else text)
        return
    name, _, rest = text[1:].partition(" ")
    try:
        if name in ("quit", "q", "exit"):
            view.quit()
        elif name == "help":
            view.notice(HELP)
        elif name in ("away", "back"):
            view.away = name == "away"
            ack = await view.socket.request("presence:set", {"status": "away" if view.away else "online"})
            view.notice(presence_note(away=view.away, seen_as=str(ack.get("seen_as") or ack["status"])))
        elif name == "reply":
            seq, body = seq_and_text(rest)
            await view.send(body, reply_to=str(message_at(view.state, seq)["id"]))
        elif name == "edit":
            seq, body = seq_and_text(rest)
            payload = {"room_id": view.room_id, "message_id": str(message_at(view.state, seq)["id"]), "body": body}
            await view.socket.request("message:edit", payload)
        elif name == "delete":
            seq, _ = seq_and_text(rest + " x")
            await view.socket.request(
                "message:delete", {"room_id": view.room_id, "message_id": str(message_at(view.state, seq)["id"])}
            )
        elif name == "download":
            await download(view, message_at(view.state, seq_and_text(rest + " x")[0]))
        elif name in ("react", "unreact"):
            seq, emoji = seq_and_text(rest)
            await view.socket.request(
                "message:react",
                {
                    "room_id": view.room_id,
                    "message_id": str(message_at(view.state, seq)["id"]),
                    "emoji": emoji,
                    "action": "add" if name == "react" else "remove",
                },
            )
        else:
            view.notice(f"unknown command /{name}; {HELP}")
    except CliError as error:
        view.notice(f"/{name}: {getattr(error, 'code', 'error')}: {error}")


async def download(view: RoomView, message: dict[str, Any]) -> None:
    """Save a message's attachments in the current folder, each under its own name (never overwriting)."""
    if not message.get("attachment_ids"):
        view.notice(f"#{message['seq']} has no attachments")
    for attachment_id in message.get("attachment_ids") or []:
        saved = await files.download(view.api, view.room_id, str(attachment_id), None, None)
        view.notice(f"saved {saved['filename']} to {saved['path']}")


def seq_and_text(rest: str) -> tuple[int, str]:
    """A command's "SEQ TEXT" (the seq may carry its #)."""
    seq, _, text = rest.strip().lstrip("#").partition(" ")
    if not seq.isdigit() or not text.strip():
        raise Refused("usage", "give a message's seq (the #number) and then the text")
    return int(seq), text.strip()


def message_at(state: RoomState, seq: int) -> dict[str, Any]:
    """The message #``seq`` the view shows, or a refusal a command reports."""
    message = state.messages.get(seq)
    if message is None:
        raise Refused("not_found", f"no message #{seq} here")
    return message
