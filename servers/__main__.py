"""``python -m servers`` and the ``refservers`` command.

A module of its own, importing nothing heavy, so that the garbage collector is off
before the first import of the command's modules (servers.cli imports the core,
asyncio, Twisted's reactor and cryptography): those imports make long-lived objects
and hardly any garbage, and the collections their allocations triggered took about
4% of `refservers run http`'s instructions to ready (issue 16). servers.cli.main
keeps it off for `up` and `run` until start-up is done, and turns it back on.
"""

import gc


def entry_point() -> None:
    gc.disable()
    from .cli import entry_point as run_command

    run_command()


if __name__ == "__main__":
    entry_point()
