"""A faithful local Dynamics 365 / Dataverse Web API (and its Entra token endpoint) for tests, demo and benchmarks."""

from sandbox.dataverse.server import DataverseSandbox

__all__ = ["DataverseSandbox"]
