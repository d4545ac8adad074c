"""Counting the database commands a piece of code sends, for tests that bound them (no query per item)."""
from pymongo import monitoring


class Commands(monitoring.CommandListener):
    """Pass as `event_listeners=[listener]` to a client; `names` lists each command sent, in order."""

    def __init__(self):
        self.names: list[str] = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass
