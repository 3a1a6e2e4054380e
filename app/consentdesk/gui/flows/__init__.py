"""Capture flows shown in the caller panel: consent, withdrawal, privacy request,
correction, identity check and the one-time agent prompt."""

from consentdesk.gui.flows.agent import AgentPrompt, needs_agent_prompt
from consentdesk.gui.flows.base import (
    GENERAL_CHECK,
    CaptureFlow,
    FlowEnv,
    FlowPage,
    Outcome,
    ScriptedFlow,
    make_button,
    pairs_phrase,
    receipts_word,
)
from consentdesk.gui.flows.consent import ConsentFlow, WithdrawalFlow, withdrawable_cells
from consentdesk.gui.flows.correction import CorrectionFlow, VerifyFlow
from consentdesk.gui.flows.request import RequestFlow, reference_label
from consentdesk.gui.flows.script_view import ScriptView

__all__ = [
    "GENERAL_CHECK",
    "AgentPrompt",
    "CaptureFlow",
    "ConsentFlow",
    "CorrectionFlow",
    "FlowEnv",
    "FlowPage",
    "Outcome",
    "RequestFlow",
    "ScriptView",
    "ScriptedFlow",
    "VerifyFlow",
    "WithdrawalFlow",
    "make_button",
    "needs_agent_prompt",
    "pairs_phrase",
    "receipts_word",
    "reference_label",
    "withdrawable_cells",
]
