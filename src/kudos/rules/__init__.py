"""Campaign rules: the program document (schema) and its pure evaluation (engine)."""
