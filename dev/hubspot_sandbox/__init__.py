"""A local stand-in for HubSpot's Communication Preferences API, served over real HTTP.

Used by the hook's tests, end-to-end Airflow runs and the throughput benchmark; also runnable on
its own with ``python -m dev.hubspot_sandbox``.
"""

from dev.hubspot_sandbox.server import SandboxServer
from dev.hubspot_sandbox.settings import DEFAULT_TOKEN, SandboxSettings

__all__ = ["DEFAULT_TOKEN", "SandboxServer", "SandboxSettings"]
