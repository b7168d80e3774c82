"""Named toxics on a TCP listener, applied live to its open connections.

This is Toxiproxy's ToxicCollection (toxic_collection.go, link.go): each listener owns
a :class:`ToxicChain`, an ordered list of :class:`NamedToxic` (name, type, stream,
toxicity, attributes), and the open connections through it. Adding, updating or
removing a toxic changes the pipes of every open connection at once, not only of
those that start afterwards:

- added: the toxic becomes the last stage of each pipe of its stream;
- updated: its stage is rebuilt with the new attributes (toxicity rolled again, a
  ``limit_data`` count kept); what the old stage held goes on at once;
- removed: what its stage held goes on at once; removing a ``timeout`` toxic closes
  the connections (Toxiproxy's TimeoutToxic.Cleanup closes the link);
- toxicity: rolled once per connection and direction when the stage is built.

Everything here runs on the reactor thread (the APIs that change it run there too).
Fault rules of the FaultBook are not in the chain: they are drawn when a connection
starts and stay for its life (see ``toxics.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class NamedToxic:
    """One toxic of a listener, as Toxiproxy's ToxicWrapper holds it."""

    name: str
    type: str
    stream: str  # as the client spelled it; ``direction`` is the lower-case stream
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def as_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON for a toxic, keys in its order."""
        toxicity: float | int = int(self.toxicity) if float(self.toxicity).is_integer() else self.toxicity
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
        }


class LiveConnection(Protocol):
    """An open connection of the listener, told about changes to its toxics."""

    def toxic_added(self, toxic: NamedToxic) -> None: ...

    def toxic_updated(self, toxic: NamedToxic) -> None: ...

    def toxic_removed(self, toxic: NamedToxic) -> None: ...


class ToxicChain:
    """A listener's named toxics and its open connections."""

    def __init__(self) -> None:
        self._toxics: list[NamedToxic] = []
        self.connections: set[LiveConnection] = set()

    def __iter__(self) -> Any:
        return iter(list(self._toxics))

    def get(self, name: str) -> NamedToxic | None:
        return next((toxic for toxic in self._toxics if toxic.name == name), None)

    def listing(self) -> list[NamedToxic]:
        """Upstream toxics first, then downstream, each in the order they were added
        (Toxiproxy's GetToxicArray walks its two chains in that order)."""
        return [t for t in self._toxics if t.direction == "upstream"] + [
            t for t in self._toxics if t.direction == "downstream"
        ]

    def add(self, toxic: NamedToxic) -> None:
        """Append ``toxic``; raises ValueError when the name is taken."""
        if self.get(toxic.name) is not None:
            raise ValueError(f"toxic {toxic.name!r} exists already")
        self._toxics.append(toxic)
        for connection in list(self.connections):
            connection.toxic_added(toxic)

    def update(self, toxic: NamedToxic) -> None:
        """``toxic`` (one of ours) changed its attributes or toxicity."""
        for connection in list(self.connections):
            connection.toxic_updated(toxic)

    def remove(self, name: str) -> bool:
        toxic = self.get(name)
        if toxic is None:
            return False
        self._toxics.remove(toxic)
        for connection in list(self.connections):
            connection.toxic_removed(toxic)
        return True

    def clear(self) -> None:
        for toxic in self.listing():
            self.remove(toxic.name)
