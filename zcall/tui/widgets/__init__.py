"""Small widgets of the zcall TUI."""
