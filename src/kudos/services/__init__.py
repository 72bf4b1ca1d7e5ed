"""Use cases: each takes a transaction (``Tx``) or runs as writer ``Work``."""
