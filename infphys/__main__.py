"""``python -m infphys`` runs the command line."""

from infphys.cli import main

main()
