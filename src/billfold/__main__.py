"""``python -m billfold``: the command line."""

from billfold.entrypoints.cli import main

main()
