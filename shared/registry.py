"""Every flow of the product, in one place: the function app, the operator CLI and the wiring read it.

Adding a flow: a module in shared/flows/ that defines its FlowDefinition, a Blueprint in
shared/entrypoints/, and one line here.
"""

from __future__ import annotations

from shared.flows.definition import FlowDefinition
from shared.flows.egress import EGRESS
from shared.flows.ingress import INGRESS
from shared.flows.initial_transfer import INITIAL_TRANSFER
from shared.flows.optout import OPTOUT

FLOWS: dict[str, FlowDefinition] = {flow.name: flow for flow in (INGRESS, INITIAL_TRANSFER, EGRESS, OPTOUT)}


def flow(name: str) -> FlowDefinition:
    try:
        return FLOWS[name]
    except KeyError:
        raise KeyError(f"no flow named '{name}' (flows: {', '.join(FLOWS)})") from None
