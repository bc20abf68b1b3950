"""The five VSM roles, registered under the `amcp.roles` entry-point group, so
`amcp-agent --role s1` (to s5) runs an agent with that role's behaviour."""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from agents.vsm.role import VsmRole, VsmSettings
    from agents.vsm.s1.role import OperationsRole
    from agents.vsm.s2.role import CoordinationRole
    from agents.vsm.s3.role import ControlRole
    from agents.vsm.s4.role import IntelligenceRole
    from agents.vsm.s5.role import PolicyRole

# Each name loads its module on first use (PEP 562): a command line that imports one
# module of this package does not pay for all the others.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "role": ["VsmRole", "VsmSettings"],
        "s1.role": ["OperationsRole"],
        "s2.role": ["CoordinationRole"],
        "s3.role": ["ControlRole"],
        "s4.role": ["IntelligenceRole"],
        "s5.role": ["PolicyRole"],
    },
)

__all__ = [
    "ControlRole",
    "CoordinationRole",
    "IntelligenceRole",
    "OperationsRole",
    "PolicyRole",
    "VsmRole",
    "VsmSettings",
]
