"""The local hosting provider: the edge host. See ``engine.edge.host`` for the layout and behaviour."""

from engine.edge.deployments import Manifest, ServerSpec
from engine.edge.host import AppStatus, DeploymentInfo, EdgeHost, HealthResult
from engine.edge.routes import AppRoute
from engine.edge.usage import AppTraffic, ServerStart

__all__ = [
    "AppRoute",
    "AppStatus",
    "AppTraffic",
    "DeploymentInfo",
    "EdgeHost",
    "HealthResult",
    "Manifest",
    "ServerSpec",
    "ServerStart",
]
