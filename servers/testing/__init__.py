"""Test support, kept out of the runtime package (as aiosmtpd keeps aiosmtpd/testing/):
the pytest plugin (``plugin``, the ``pytest11`` entry point) and the remote targets it
hands out for servers running elsewhere (``remote``). Importing the servers never
imports pytest."""
