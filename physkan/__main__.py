"""``python -m physkan``: the ``physkan`` command line (:func:`physkan.cli.main`)."""

from physkan.cli import main

main()
