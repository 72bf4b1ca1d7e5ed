"""HTTP entrypoint: the Gameball-compatible routes and kudos' management API."""
