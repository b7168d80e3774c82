"""Test support, kept out of the runtime package (as aiosmtpd keeps aiosmtpd/testing/):
the pytest plugin (``plugin``, the ``pytest11`` entry point), the remote targets it
hands out for servers running elsewhere (``remote``), a test's own namespace on shared
servers (``tenant``), the admin API client (``admin_client``) and the testcontainers
module (``containers``). Importing the servers never imports pytest."""
