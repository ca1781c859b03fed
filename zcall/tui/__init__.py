"""The Textual desk-phone interface: the second face of the same engine.Phone the headless CLI drives."""
