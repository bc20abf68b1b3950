"""The five VSM roles, registered under the `amcp.roles` entry-point group, so
`amcp-agent --role s1` (to s5) runs an agent with that role's behaviour."""

from agents.roles.base import VsmRole, VsmSettings
from agents.roles.s1 import OperationsRole
from agents.roles.s2 import CoordinationRole
from agents.roles.s3 import ControlRole
from agents.roles.s4 import IntelligenceRole
from agents.roles.s5 import PolicyRole

__all__ = [
    "ControlRole",
    "CoordinationRole",
    "IntelligenceRole",
    "OperationsRole",
    "PolicyRole",
    "VsmRole",
    "VsmSettings",
]
