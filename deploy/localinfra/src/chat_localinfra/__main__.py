from chat_localinfra.cli import main

raise SystemExit(main())
