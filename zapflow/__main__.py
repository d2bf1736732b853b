"""`python -m zapflow` runs the CLI."""

from zapflow.cli import main

main()
