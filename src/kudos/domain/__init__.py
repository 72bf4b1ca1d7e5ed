"""Pure domain code: value objects, identity rules and payload validation. No I/O."""
