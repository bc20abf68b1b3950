"""The five VSM roles, registered under the `amcp.roles` entry-point group, so
`amcp-agent --role s1` (to s5) runs an agent with that role's behaviour."""

from agents.vsm.role import VsmRole, VsmSettings
from agents.vsm.s1.role import OperationsRole
from agents.vsm.s2.role import CoordinationRole
from agents.vsm.s3.role import ControlRole
from agents.vsm.s4.role import IntelligenceRole
from agents.vsm.s5.role import PolicyRole

__all__ = [
    "ControlRole",
    "CoordinationRole",
    "IntelligenceRole",
    "OperationsRole",
    "PolicyRole",
    "VsmRole",
    "VsmSettings",
]
