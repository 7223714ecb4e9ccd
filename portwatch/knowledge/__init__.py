"""Port descriptions embedded in the app: answers "what is port N/proto?".

Descriptions live as TOML in ``portwatch/resources/knowledge/`` (curated by us) and in
the user's ``ports.toml`` (which adds to or overrides ours); ports neither describes fall
back to the OS services database, and then to an honest "no registered service known".
Standard library only: no Qt, no psutil, no sqlite.
"""

from portwatch.knowledge.base import KnowledgeBase
from portwatch.knowledge.model import Check, Entry, PortInfo, Related, Source

__all__ = ["Check", "Entry", "KnowledgeBase", "PortInfo", "Related", "Source"]
