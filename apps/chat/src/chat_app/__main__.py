"""``python -m chat_app`` is the ``chat`` command."""

from chat_app.cli import main

raise SystemExit(main())
