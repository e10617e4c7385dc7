"""The ``sagd`` command line."""
