"""Developer tools run with `python -m`: generators of the project's reference pages in docs/."""
