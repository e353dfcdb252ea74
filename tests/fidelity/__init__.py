"""Vendor-client fidelity suites: the vendors' own clients against the repo's sandboxes."""
