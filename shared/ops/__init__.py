"""Operator views and checks behind the CLI: status, leases, pre-flight. No rendering here."""
