"""Sub-commands of the ``symbreak`` command line, one module each (see ``cli.py``)."""
