"""The screens of the zcall TUI: home, dial, incoming, in call, trust, settings, log."""
