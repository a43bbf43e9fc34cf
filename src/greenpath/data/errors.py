"""User-facing errors of the dataset layer."""

from __future__ import annotations


class DataError(Exception):
    """A dataset is missing, corrupt, or asked for with bad options.

    The message is meant for the user: it names the dataset, the data root, the files
    that were expected (or found corrupt) and how to obtain or fix them.
    """
