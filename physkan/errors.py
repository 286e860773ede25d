"""The root of physkan's exceptions.

Every exception physkan raises on purpose derives from :class:`PhyskanError`. Those that
mean "the user must fix something" (a bad problem file, an unknown name, a damaged model
file, a refused upload) derive from :class:`UserError`; the command line turns them into
one ``Error: …`` line and exit status 2, without a traceback. Concrete classes keep their
historic built-in bases too (``ValueError``, ``KeyError``…) so ``except ValueError`` code
keeps working.

This module imports nothing from physkan.
"""

from __future__ import annotations

__all__ = ["PhyskanError", "UserError"]


class PhyskanError(Exception):
    """Base class of every error physkan raises on purpose."""


class UserError(PhyskanError):
    """An error in what the user gave (input, configuration, files): shown as one line."""
