"""``python -m rjobs``: the command line."""

from rjobs.cli import main

main()
