"""``python -m lifevalue`` runs the command line."""

from lifevalue.cli import main

main()
