"""The ``interview`` commands, one module per group; ``bot.adapters.cli`` puts them together."""
