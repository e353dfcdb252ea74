"""The e2e harnesses' fixtures, for the crash tests (the same stacks; nothing copied)."""

from tests.e2e.conftest import stack_factory
from tests.e2e.optout_harness import optout_sftp_stack_factory, optout_stack_factory
from tests.e2e.test_egress import egress_stack_factory
from tests.e2e.test_initial_transfer import transfer_stack

__all__ = ["egress_stack_factory", "optout_sftp_stack_factory", "optout_stack_factory", "stack_factory",
           "transfer_stack"]  # fmt: skip
