"""`python -m bot` is the same as the `secretbot` command."""

from bot.cli import main

raise SystemExit(main())
