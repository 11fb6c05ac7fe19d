"""The room view's screen on prompt_toolkit: a header with the room and the connection, the messages, a status line
(typing, presence) and the input line. Apart from what it shows (room_state.py) and from the session
(interactive.py), so the layout is read in one place.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style

from chat_cli.output import room_title

if TYPE_CHECKING:
    from chat_cli.interactive import RoomView

STYLE = Style.from_dict(
    {
        "header": "reverse",
        "status": "reverse",
        "notice": "italic ansibrightblack",
        "me": "ansigreen",
        "mark": "ansicyan",
        "file": "ansibrightblack",
    }
)


def room_screen(view: RoomView) -> Application[None]:
    """The full-screen application showing ``view``: Ctrl-D or Ctrl-C quits it."""
    keys = KeyBindings()

    @keys.add("c-d")
    @keys.add("c-c")
    def _quit(event: KeyPressEvent) -> None:
        view.quit()

    def messages() -> StyleAndTextTuples:
        fragments: StyleAndTextTuples = []
        for style, text in view.state.lines():
            fragments.append((style, text + "\n"))
        return fragments

    def cursor() -> Any:
        from prompt_toolkit.data_structures import Point

        return Point(0, max(0, len(view.state.lines()) - 1))

    name = f"#{view.room['name']}" if view.room.get("name") else f"{room_title(view.room)} ({view.room.get('kind')})"
    header = Window(
        FormattedTextControl(lambda: [("class:header", f" {name}  ({view.connection})  /help for commands")]),
        height=1,
    )
    body = Window(FormattedTextControl(messages, get_cursor_position=cursor), wrap_lines=True)
    status = Window(
        FormattedTextControl(lambda: [("class:status", " " + view.state.status(time.monotonic()))]), height=1
    )
    return Application(
        layout=Layout(HSplit([header, body, status, view.input]), focused_element=view.input),
        key_bindings=keys,
        style=STYLE,
        full_screen=True,
        mouse_support=False,
    )
