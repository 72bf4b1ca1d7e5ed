"""`python -m kudos` runs the CLI."""

from kudos.cli import main

main()
