"""Exception types of esm.

Every error that comes from what a user passed in (a genome, a file, an option) is an
:class:`InputError`; the command line turns it into a one-line message and exit code 2.
"""

from __future__ import annotations


class EsmError(Exception):
    """Base class of esm's own errors."""


class InputError(EsmError, ValueError):
    """Bad input: a malformed genome or string, an unknown name, a bad file or option."""
