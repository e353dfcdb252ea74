"""Finds code that turns TLS or SSH host-key verification off, by its syntax tree (comments and strings that
merely mention the words do not count)."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

FORBIDDEN_NAMES = {
    "CERT_NONE": "ssl.CERT_NONE accepts any certificate",
    "_create_unverified_context": "an unverified SSL context",
    "AutoAddPolicy": "paramiko AutoAddPolicy trusts any host key",
    "WarningPolicy": "paramiko WarningPolicy trusts any host key",
    "disable_warnings": "silencing urllib3's insecure-request warnings",
}
FORBIDDEN_CALLS = {"set_missing_host_key_policy": "a missing-host-key policy instead of the pinned key check"}


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str  # path:line
    why: str


def _false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, 0, None, "")


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def scan_source(text: str, origin: str) -> list[Finding]:
    found: list[Finding] = []

    def add(node: ast.AST, why: str) -> None:
        found.append(Finding(f"{origin}:{getattr(node, 'lineno', 0)}", why))

    for node in ast.walk(ast.parse(text, origin)):
        name = _name(node) if isinstance(node, ast.Name | ast.Attribute) else None
        if name in FORBIDDEN_NAMES:
            add(node, FORBIDDEN_NAMES[name])
        if isinstance(node, ast.Call):
            called = _name(node.func)
            if called in FORBIDDEN_CALLS:
                add(node, FORBIDDEN_CALLS[called])
            for keyword in node.keywords:
                if keyword.arg in ("verify", "check_hostname") and _false(keyword.value):
                    add(node, f"{keyword.arg}= turned off")
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _name(target) in ("verify", "check_hostname", "verify_mode") and (
                    _false(node.value) or _name(node.value) == "CERT_NONE"  # type: ignore[arg-type]
                ):
                    add(node, f"{_name(target)} set to off")
    return found


def scan_files(paths: list[pathlib.Path], root: pathlib.Path) -> list[Finding]:
    return [f for p in paths for f in scan_source(p.read_text(encoding="utf-8"), str(p.relative_to(root)))]
