"""kudos: a self-hostable events and rewards engine that speaks the Gameball REST API."""

__version__ = "0.1.0"
