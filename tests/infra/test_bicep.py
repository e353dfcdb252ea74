"""Structural tests of infra/: Bicep cannot be compiled offline, so the templates' text is checked for the
properties the deployment depends on. Each check returns its problems; every check is also run against a
deliberately broken copy of the templates to prove that it can fail."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pycep import BicepParser

from shared.flows.runner import RunSummary
from shared.settings import SPECS
from tests.infra.bicep_text import (
    Resource,
    block_at,
    bracket_problems,
    declarations,
    decorators,
    description,
    resources,
    split_ternary,
    split_top_level,
    strip_comments,
    top_level_entries,
    unquote,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
Files = dict[str, str]  # path relative to infra/ (plus ../azure.yaml) -> text

ROLES = {  # role -> (GUID, resource type the assignment must be scoped to)
    "Storage Blob Data Owner": ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Microsoft.Storage/storageAccounts"),
    "Storage Queue Data Contributor": ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Microsoft.Storage/storageAccounts"),
    "Storage Table Data Contributor": ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Microsoft.Storage/storageAccounts"),
    "Monitoring Metrics Publisher": ("3913510d-42f4-4e42-8a64-420c390055eb", "Microsoft.Insights/components"),
    "Key Vault Secrets User": ("4633458b-17de-408a-b874-0445c86b69e6", "Microsoft.KeyVault/vaults"),
}
# Flex Consumption deprecates these app settings (functions-app-settings.md, "Flex Consumption plan deprecations",
# 2025-07; WEBSITE_TIME_ZONE and TZ from functions-timezone.md).
DEPRECATED_SETTINGS = (
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_DNS_SERVER",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL",
    "WEBSITE_TIME_ZONE",
    "TZ",
)
# ... and these site properties (same table; ARM refuses some of them, e.g. ftpsState, with a 400).
FLEX_UNSUPPORTED_SITE_PROPERTIES = (
    "alwaysOn",
    "containerSize",
    "ftpsState",
    "isReserved",
    "IsXenon",
    "javaVersion",
    "LinuxFxVersion",
    "netFrameworkVersion",
    "powerShellVersion",
    "functionAppScaleLimit",
    "preWarmedInstanceCount",
    "use32BitWorkerProcess",
    "vnetBackupRestoreEnabled",
    "vnetContentShareEnabled",
    "vnetImagePullEnabled",
    "vnetRouteAllEnabled",
    "windowsFxVersion",
)
# The API version of every resource type, looked up in azure-rest-api-specs / bicep-types-az (2026). Microsoft.Web
# 2025-05-01 is the first whose schema has functionAppConfig.siteUpdateStrategy (2024-11-01 and 2025-03-01 lack it).
API_VERSIONS = {
    "Microsoft.Resources/resourceGroups": "2025-04-01",
    "Microsoft.Storage/storageAccounts": "2025-06-01",
    "Microsoft.Storage/storageAccounts/blobServices": "2025-06-01",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "2025-06-01",
    "Microsoft.Storage/storageAccounts/queueServices": "2025-06-01",
    "Microsoft.Storage/storageAccounts/queueServices/queues": "2025-06-01",
    "Microsoft.KeyVault/vaults": "2025-05-01",
    "Microsoft.Web/serverfarms": "2025-05-01",
    "Microsoft.Web/sites": "2025-05-01",
    "Microsoft.Web/sites/config": "2025-05-01",
    "Microsoft.OperationalInsights/workspaces": "2025-02-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.Insights/scheduledQueryRules": "2023-12-01",
    "Microsoft.Insights/actionGroups": "2023-01-01",
    "Microsoft.Insights/workbooks": "2023-06-01",
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
}
# Written on every deployment whatever the options.
ALWAYS_SETTINGS = (
    "DATAVERSE_URL",
    "DATAVERSE_TENANT_ID",
    "DATAVERSE_CLIENT_ID",
    "DATAVERSE_AUTHORITY_HOST",
    "CAMPAIGN_BASE_URL",
    "CAMPAIGN_ORGANIZATION",
    "CAMPAIGN_IMS_URL",
    "CAMPAIGN_CLIENT_ID",
    "CAMPAIGN_CLIENT_SECRET",
    "CAMPAIGN_SCOPES",
    "STATE_STORAGE_ACCOUNT",
    "STATE_CONTAINER",
    "SYNC_CONFIG",
    "INGRESS_SCHEDULE",
    "RUN_TIME_BUDGET_SECONDS",
    "TELEMETRY_EXPORT",
)
SFTP_SETTINGS = ("SFTP_HOST", "SFTP_PORT", "SFTP_USERNAME", "SFTP_HOST_KEY", "SFTP_PRIVATE_KEY")
SECRET_SETTINGS = ("DATAVERSE_CLIENT_SECRET", "DATAVERSE_CERTIFICATE", "CAMPAIGN_CLIENT_SECRET", "SFTP_PRIVATE_KEY")
# App settings that are not the connector's own (SPECS): the Functions host's and the telemetry wiring.
HOST_SETTINGS = re.compile(r"^(AzureWebJobsStorage__\w+|APPLICATIONINSIGHTS_\w+|AzureFunctionsJobHost__\w+"
                           r"|PYTHON_APPLICATIONINSIGHTS_\w+)$")  # fmt: skip
KEY_VAULT_REFERENCE = re.compile(r"'@Microsoft\.KeyVault\(SecretUri=\$\{[^}]+\}secrets/(\$\{[\w.]+\}|[\w-]+)\)'")
SECRET_LIKE_PARAM = re.compile(r"(?i)client_?secret|private_?key|password|passphrase")
SPEC = {spec.name: spec for spec in SPECS}
SUMMARY_FIELDS = {f.name for f in dataclasses.fields(RunSummary)}
# Summary fields the alerts may read before the runner writes them (the flow framework adds them); absent, the
# queries fall back (scope -> table) or ignore them (cursor_age_seconds -> 0).
PLANNED_SUMMARY_FIELDS = {"scope", "cursor_age_seconds"}
SUMMARY_PREAMBLE = (
    'traces\n| where message startswith "run.summary "\n| extend s = parse_json(substring(message, 12))\n'
)


def load_infra() -> Files:
    files = {str(p.relative_to(INFRA)): p.read_text() for p in sorted(INFRA.rglob("*")) if p.is_file()}
    files["../azure.yaml"] = (ROOT / "azure.yaml").read_text()
    return files


def bicep_files(files: Files) -> dict[str, str]:
    return {name: text for name, text in files.items() if name.endswith(".bicep")}


def all_resources(files: Files) -> list[Resource]:
    return [r for text in bicep_files(files).values() for r in resources(text)]


def deployed(files: Files, type_: str) -> list[Resource]:
    return [r for r in all_resources(files) if r.type == type_ and not r.existing]


# ---------------------------------------------------------------- the app settings main.bicep writes


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    value: str  # raw Bicep expression
    when: tuple[tuple[str, bool], ...]  # (condition, branch) terms; empty: always written
    source: str  # the union argument it comes from


def object_settings(expr: str, variables: dict[str, str], source: str,
                    when: tuple[tuple[str, bool], ...] = ()) -> tuple[list[Setting], list[str]]:  # fmt: skip
    """The entries an object expression can produce, each with the conditions it needs; and the parts whose keys
    are only known at deployment (an object param, a toObject(...) call)."""
    expr = expr.strip()
    if expr.startswith("{"):
        return [Setting(k, v, when, source) for k, v in top_level_entries(expr).items()], []
    ternary = split_ternary(expr)
    if ternary:
        condition, yes, no = ternary
        settings_yes, dynamic_yes = object_settings(yes, variables, source, (*when, (condition, True)))
        settings_no, dynamic_no = object_settings(no, variables, source, (*when, (condition, False)))
        return settings_yes + settings_no, dynamic_yes + dynamic_no
    call = re.fullmatch(r"union\((.*)\)", expr, re.DOTALL)
    if call:
        settings: list[Setting] = []
        dynamic: list[str] = []
        for part in split_top_level(call.group(1), ","):
            found, more = object_settings(part, variables, source, when)
            settings += found
            dynamic += more
        return settings, dynamic
    if expr in variables:
        return object_settings(variables[expr].split("=", 1)[1], variables, source, when)
    return [], [expr]


def app_settings(files: Files) -> tuple[list[Setting], list[str], list[str]]:
    """(settings, deploy-time parts, union arguments in order) of the appsettings module's appSettings."""
    main = strip_comments(files["main.bicep"])
    match = re.search(r"^module\s+\w+\s+'modules/appsettings\.bicep'\s*=\s*\{", main, re.MULTILINE)
    assert match, "main.bicep: no module using modules/appsettings.bicep"
    params = top_level_entries(top_level_entries(block_at(main, match.end() - 1))["params"])
    call = re.fullmatch(r"union\((.*)\)", params["appSettings"], re.DOTALL)
    assert call, f"appSettings should be union(<objects>), got {params['appSettings']!r}"
    parts = split_top_level(call.group(1), ",")
    variables = declarations(main, "var")
    settings: list[Setting] = []
    dynamic: list[str] = []
    for part in parts:
        found, more = object_settings(part, variables, part)
        settings += found
        dynamic += more
    return settings, dynamic, parts


def by_name(settings: list[Setting]) -> dict[str, list[Setting]]:
    out: dict[str, list[Setting]] = {}
    for setting in settings:
        out.setdefault(setting.name, []).append(setting)
    return out


def param_default(declaration: str) -> str | None:
    """The default of a `param` declaration's text ('string = 'x''), or None when it has none."""
    return declaration.split("=", 1)[1].strip() if "=" in declaration else None


def literal(value: str | None) -> str | None:
    """A Bicep literal as the app setting string it becomes ('x' -> x, 22 -> 22); None for expressions."""
    if value is None:
        return None
    if re.fullmatch(r"-?\d+", value) or value in ("true", "false"):
        return value
    return unquote(value)


# ---------------------------------------------------------------- checks


def check_balanced(files: Files) -> list[str]:
    return [f"{name}: {p}" for name, text in bicep_files(files).items() for p in bracket_problems(text)]


@functools.lru_cache(maxsize=64)  # parsing is slow and most checks see the same texts
def grammar_error(text: str) -> str:
    try:
        BicepParser().parse(text=text)
    except Exception as error:  # lark raises several exception types; all mean "not valid Bicep"
        return str(error).splitlines()[0]
    return ""


def check_bicep_grammar(files: Files) -> list[str]:
    """Every template parses with a real Bicep grammar (pycep-parser; syntax only)."""
    return [f"{name}: {grammar_error(text)}" for name, text in bicep_files(files).items() if grammar_error(text)]


def check_flex_plan(files: Files) -> list[str]:
    plans = deployed(files, "Microsoft.Web/serverfarms")
    if len(plans) != 1:
        return [f"expected one App Service plan, found {len(plans)}"]
    plan, problems = plans[0], []
    if unquote(plan.get("sku", "name")) != "FC1" or unquote(plan.get("sku", "tier")) != "FlexConsumption":
        problems.append("plan sku is not FC1 / FlexConsumption")
    if plan.get("properties", "reserved") != "true":
        problems.append("plan is not Linux (reserved: true)")
    return problems


def the_site(files: Files) -> tuple[str, Resource]:
    sites = [(n, r) for n, t in bicep_files(files).items() for r in resources(t)]
    sites = [(n, r) for n, r in sites if r.type == "Microsoft.Web/sites" and not r.existing]
    assert len(sites) == 1, f"expected one Function App, found {len(sites)}"
    return sites[0]


def check_function_app_config(files: Files) -> list[str]:
    file_name, site = the_site(files)
    problems = []
    if unquote(site.get("kind")) != "functionapp,linux":
        problems.append("site kind is not functionapp,linux")
    if unquote(site.get("identity", "type")) != "SystemAssigned":
        problems.append("site has no system-assigned identity")
    config = ("properties", "functionAppConfig")
    if (unquote(site.get(*config, "runtime", "name")), unquote(site.get(*config, "runtime", "version"))) != (
        "python",
        "3.11",
    ):
        problems.append("functionAppConfig.runtime is not python 3.11")
    storage = (*config, "deployment", "storage")
    if unquote(site.get(*storage, "type")) != "blobContainer":
        problems.append("deployment storage is not a blob container")
    if unquote(site.get(*storage, "authentication", "type")) != "SystemAssignedIdentity":
        problems.append("deployment storage does not authenticate with the system-assigned identity")
    params = declarations(files[file_name], "param")
    for key in ("maximumInstanceCount", "instanceMemoryMB"):
        value = site.get(*config, "scaleAndConcurrency", key)
        if value not in params:
            problems.append(f"scaleAndConcurrency.{key} is {value!r}, not a parameter")
    return problems


def check_no_deprecated_settings(files: Files) -> list[str]:
    return [
        f"{name}: {setting}"
        for name, text in bicep_files(files).items()
        for setting in DEPRECATED_SETTINGS
        if re.search(rf"(?<![\w.]){setting}(?![\w.])", strip_comments(text))
    ]


def check_no_flex_unsupported_properties(files: Files) -> list[str]:
    _, site = the_site(files)
    problems = []
    for path in (("properties",), ("properties", "siteConfig")):
        block = site.get(*path) or "{}"
        present = {key.lower() for key in top_level_entries(block)}
        problems += [f"site {'.'.join(path)}.{p} is not supported on Flex Consumption"
                     for p in FLEX_UNSUPPORTED_SITE_PROPERTIES if p.lower() in present]  # fmt: skip
    return problems


def check_site_update_strategy(files: Files) -> list[str]:
    file_name, site = the_site(files)
    problems = []
    value = site.get("properties", "functionAppConfig", "siteUpdateStrategy", "type")
    params = declarations(files[file_name], "param")
    if value not in params:
        return [f"functionAppConfig.siteUpdateStrategy.type is {value!r}, not a parameter"]
    main = strip_comments(files["main.bicep"])
    module = re.search(rf"^module\s+\w+\s+'{re.escape(file_name.split('/', 1)[-1])}'|^module\s+\w+\s+'modules/"
                       rf"{re.escape(Path(file_name).name)}'\s*=\s*\{{", main, re.MULTILINE)  # fmt: skip
    assert module
    passed = top_level_entries(top_level_entries(block_at(main, main.index("{", module.start())))["params"])
    main_param = passed.get(value)
    default = literal(param_default(declarations(main, "param").get(main_param or "", "")))
    if default != "RollingUpdate":
        problems.append(f"site update strategy default is {default!r}, not RollingUpdate")
    return problems


def check_api_versions(files: Files) -> list[str]:
    problems = []
    for resource in all_resources(files):
        expected = API_VERSIONS.get(resource.type)
        if expected is None:
            problems.append(f"{resource.symbol}: {resource.type} has no expected API version in this test")
        elif resource.api_version != expected:
            problems.append(f"{resource.symbol}: {resource.type}@{resource.api_version}, expected @{expected}")
    return problems


def check_roles(files: Files) -> list[str]:
    problems = []
    for role, (guid, scope_type) in ROLES.items():
        holders = [
            (name, m.group(1))
            for name, text in bicep_files(files).items()
            for m in re.finditer(rf"(\w+)\s*[:=]\s*'{guid}'", strip_comments(text))
        ]
        if len(holders) != 1:
            problems.append(f"{role}: GUID {guid} should be bound to exactly one name, found {holders}")
            continue
        name, holder = holders[0]
        text = files[name]
        by_symbol = {r.symbol: r for r in resources(text)}
        ref = rf"(?:\w+\.)?{holder}\b"
        assignments = [
            r
            for r in by_symbol.values()
            if r.type == "Microsoft.Authorization/roleAssignments"
            and re.search(rf"roleDefinitions'\s*,\s*{ref}\s*\)", r.get("properties", "roleDefinitionId") or "")
        ]
        if len(assignments) != 1:
            problems.append(f"{role}: expected one role assignment using {holder}, found {len(assignments)}")
            continue
        assignment = assignments[0]
        scope = assignment.get("scope") or ""
        if scope not in by_symbol or by_symbol[scope].type != scope_type:
            problems.append(f"{role}: scope {scope!r} is not a {scope_type} resource")
        principal = assignment.get("properties", "principalId")
        name_ok = re.fullmatch(
            rf"guid\(\s*{scope}\.id\s*,\s*{principal}\s*,\s*{ref}\s*\)", assignment.get("name") or ""
        )
        if not scope or not name_ok:
            problems.append(f"{role}: name is not guid({scope}.id, {principal}, <roleId>)")
        if unquote(assignment.get("properties", "principalType")) != "ServicePrincipal":
            problems.append(f"{role}: principalType is not ServicePrincipal")
    return problems


def check_connector_settings(files: Files) -> list[str]:
    settings, dynamic, _ = app_settings(files)
    named = by_name(settings)
    problems = [f"app setting {n} is not always written" for n in ALWAYS_SETTINGS
                if not any(not s.when for s in named.get(n, []))]  # fmt: skip
    problems += [f"app setting {n} is not in shared/settings.py SPECS" for n in named
                 if n not in SPEC and not HOST_SETTINGS.match(n)]  # fmt: skip
    if "connectorSettings" not in dynamic or "param connectorSettings object" not in files["main.bicep"]:
        problems.append("no connectorSettings object param merged into the app settings")
    # SFTP: all or nothing, under one condition on the SFTP host, never unconditionally.
    sftp_conditions = {s.when for n in SFTP_SETTINGS for s in named.get(n, [])}
    if any(n not in named for n in SFTP_SETTINGS) or len(sftp_conditions) != 1 or () in sftp_conditions:
        problems.append(f"SFTP settings are not written together under one condition: {sftp_conditions}")
    # Dataverse: the client secret or the certificate (with its thumbprint), never both.
    secret = {s.when for s in named.get("DATAVERSE_CLIENT_SECRET", [])}
    certificate = {s.when for s in named.get("DATAVERSE_CERTIFICATE", [])}
    thumbprint = {s.when for s in named.get("DATAVERSE_CERTIFICATE_THUMBPRINT", [])}
    exclusive = (
        len(secret) == len(certificate) == 1
        and len(next(iter(secret))) == len(next(iter(certificate))) == 1
        and next(iter(secret))[0][0] == next(iter(certificate))[0][0]
        and next(iter(secret))[0][1] != next(iter(certificate))[0][1]
    )
    if not exclusive:
        problems.append(f"DATAVERSE_CLIENT_SECRET {secret} and DATAVERSE_CERTIFICATE {certificate} are not exclusive")
    if thumbprint != certificate:
        problems.append(f"DATAVERSE_CERTIFICATE_THUMBPRINT {thumbprint} is not written with the certificate")
    return problems


def check_settings_match_specs(files: Files) -> list[str]:
    """Every template default of a connector setting is the default shared/settings.py applies; every parameter
    that feeds a setting says so ([NAME] in its description) and feeds that one."""
    main = files["main.bicep"]
    params = declarations(main, "param")
    tags = {name: re.findall(r"^\[(\w+)\]", description(text)) for name, text in decorators(main).items()}
    problems = []
    for param, names in tags.items():
        for setting in names:
            spec = SPEC.get(setting)
            if spec is None:
                problems.append(f"param {param} is tagged [{setting}], which is not in SPECS")
                continue
            default = param_default(params[param])
            if spec.default is not None and literal(default) != spec.default:
                problems.append(f"{setting}: template default {default} (param {param}), SPECS {spec.default!r}")
            if spec.default is None and literal(default) not in (None, ""):
                problems.append(f"{setting}: template default {default} (param {param}), SPECS has none")
    settings, _, _ = app_settings(files)
    for setting in settings:
        if setting.name not in SPEC:
            continue
        used = re.fullmatch(r"(?:string\()?(\w+)\)?", setting.value)
        if used and used.group(1) in params and setting.name not in tags.get(used.group(1), []):
            problems.append(f"{setting.name} is fed by param {used.group(1)}, which is not tagged [{setting.name}]")
        if not used and literal(setting.value) is not None and literal(setting.value) != SPEC[setting.name].default:
            problems.append(f"{setting.name}: literal {setting.value} differs from SPECS {SPEC[setting.name].default}")
    return problems


def check_secrets_from_key_vault(files: Files) -> list[str]:
    settings, _, parts = app_settings(files)
    named = by_name(settings)
    problems = []
    for name in SECRET_SETTINGS:
        for setting in named.get(name, []) or [Setting(name, "", (), "")]:
            if not KEY_VAULT_REFERENCE.fullmatch(setting.value):
                problems.append(f"{name} is not a Key Vault reference: {setting.value!r}")
            if setting.source != parts[-1]:
                problems.append(f"{name} comes from {setting.source!r}, not the last union argument: a later object "
                                "could replace it")  # fmt: skip
    for name, text in bicep_files(files).items():
        code = strip_comments(text)
        if "-----BEGIN" in code:
            problems.append(f"{name}: contains key material")
        for param in re.findall(r"^param\s+(\w+)", code, re.MULTILINE):
            if SECRET_LIKE_PARAM.search(param):
                problems.append(f"{name}: param {param} would carry a secret through the deployment")
        if re.search(r"@secure\(\)", code):
            problems.append(f"{name}: secure params are not needed; secrets are set in Key Vault")
    for param in re.findall(r"^param\s+(\w+)", strip_comments(files["main.bicepparam"]), re.MULTILINE):
        if SECRET_LIKE_PARAM.search(param):
            problems.append(f"main.bicepparam: param {param} would carry a secret through the deployment")
    return problems


def check_disabled_functions(files: Files) -> list[str]:
    main = strip_comments(files["main.bicep"])
    if not re.search(r"^param\s+disabledFunctions\s+array\s*=\s*\[\]", main, re.MULTILINE):
        return ["no `param disabledFunctions array = []`"]
    _, _, parts = app_settings(files)
    variables = declarations(main, "var")
    makers = [p for p in parts if re.search(r"toObject\(\s*disabledFunctions\s*,\s*(\w+)\s*=>\s*'AzureWebJobs\."
                                            r"\$\{\1\}\.Disabled'\s*,\s*\w+\s*=>\s*'true'\s*\)",
                                            variables.get(p, ""))]  # fmt: skip
    if len(makers) != 1:
        return ["disabledFunctions is not turned into AzureWebJobs.<name>.Disabled=true app settings"]
    if parts.index(makers[0]) < parts.index("connectorSettings"):
        return ["connectorSettings comes after the disabled functions: it could enable one again"]
    return []


def check_storage_locked_down(files: Files) -> list[str]:
    accounts = deployed(files, "Microsoft.Storage/storageAccounts")
    if len(accounts) != 1:
        return [f"expected one storage account, found {len(accounts)}"]
    account, problems = accounts[0], []
    expected = {
        "allowSharedKeyAccess": "false",
        "allowBlobPublicAccess": "false",
        "minimumTlsVersion": "'TLS1_2'",
        "supportsHttpsTrafficOnly": "true",
    }
    for key, value in expected.items():
        if account.get("properties", key) != value:
            problems.append(f"storage {key} is {account.get('properties', key)!r}, expected {value}")
    containers = deployed(files, "Microsoft.Storage/storageAccounts/blobServices/containers")
    problems += [
        f"container {c.symbol} is public" for c in containers if c.get("properties", "publicAccess") != "'None'"
    ]
    for name, text in bicep_files(files).items():
        if re.search(r"listKeys\(|AccountKey=", strip_comments(text)):
            problems.append(f"{name}: uses storage account keys")
    return problems


def check_host_storage_identity(files: Files) -> list[str]:
    settings, _, _ = app_settings(files)
    named = {s.name: s.value for s in settings if not s.when}
    problems = []
    if "AzureWebJobsStorage" in named:
        problems.append("AzureWebJobsStorage is a connection string; use the identity-based __ settings")
    if unquote(named.get("AzureWebJobsStorage__credential")) != "managedidentity":
        problems.append("AzureWebJobsStorage__credential is not managedidentity")
    if not {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri"} & set(named):
        problems.append("AzureWebJobsStorage has no account name or blob service URI")
    return problems


def check_app_insights(files: Files) -> list[str]:
    components = deployed(files, "Microsoft.Insights/components")
    if len(components) != 1:
        return [f"expected one Application Insights component, found {len(components)}"]
    problems = []
    if components[0].get("properties", "DisableLocalAuth") != "true":
        problems.append("Application Insights local auth is not disabled")
    if not components[0].get("properties", "WorkspaceResourceId"):
        problems.append("Application Insights is not workspace-based")
    if not deployed(files, "Microsoft.OperationalInsights/workspaces"):
        problems.append("no Log Analytics workspace")
    settings, _, _ = app_settings(files)
    named = {s.name: s.value for s in settings if not s.when}
    if unquote(named.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")) != "Authorization=AAD":
        problems.append("APPLICATIONINSIGHTS_AUTHENTICATION_STRING is not Authorization=AAD")
    if "APPLICATIONINSIGHTS_CONNECTION_STRING" not in named:
        problems.append("APPLICATIONINSIGHTS_CONNECTION_STRING missing")
    return problems


def check_key_vault_rbac(files: Files) -> list[str]:
    vaults = deployed(files, "Microsoft.KeyVault/vaults")
    if len(vaults) != 1:
        return [f"expected one Key Vault, found {len(vaults)}"]
    problems = []
    if vaults[0].get("properties", "enableRbacAuthorization") != "true":
        problems.append("Key Vault does not use RBAC authorization")
    if vaults[0].get("properties", "accessPolicies") is not None:
        problems.append("Key Vault declares access policies")
    return problems


def check_local_modules_only(files: Files) -> list[str]:
    problems = []
    for name, text in bicep_files(files).items():
        if re.search(r"'(?:br/|br:|ts:)", strip_comments(text)):
            problems.append(f"{name}: registry or template-spec reference")
        for path in re.findall(r"^module\s+\w+\s+'([^']+)'", strip_comments(text), re.MULTILINE):
            if path not in files and str(Path(name).parent / path) not in files:
                problems.append(f"{name}: module path {path!r} is not a file in infra/")
        for path in re.findall(r"loadTextContent\('([^']+)'\)", strip_comments(text)):
            target = (INFRA / Path(name).parent / path).resolve()
            if not target.is_relative_to(INFRA.resolve()) or str(target.relative_to(INFRA.resolve())) not in files:
                problems.append(f"{name}: loadTextContent({path!r}) is not a file in infra/")
    return problems


def check_parameters_file(files: Files) -> list[str]:
    text = strip_comments(files["main.bicepparam"])
    if not re.search(r"^using\s+'\./main\.bicep'", text, re.MULTILINE):
        return ["main.bicepparam does not use ./main.bicep"]
    declared = declarations(files["main.bicep"], "param")
    given = set(re.findall(r"^param\s+(\w+)\s*=", text, re.MULTILINE))
    problems = [f"main.bicepparam sets unknown param {p}" for p in sorted(given - set(declared))]
    required = {p for p, rest in declared.items() if "=" not in rest}
    problems += [f"main.bicepparam does not set required param {p}" for p in sorted(required - given)]
    return problems


def check_azd(files: Files) -> list[str]:
    problems = []
    yaml = files["../azure.yaml"]
    service = re.search(r"^services:\n  (\w[\w-]*):\n((?:    .*\n)+)", yaml, re.MULTILINE)
    if not service:
        return ["azure.yaml has no service"]
    body = service.group(2)
    for key, value in (("project", "."), ("language", "python"), ("host", "function")):
        if not re.search(rf"^    {key}: {re.escape(value)}$", body, re.MULTILINE):
            problems.append(f"azure.yaml service {service.group(1)}: {key} is not {value}")
    if not re.search(r"^infra:\n(?:  .*\n)*  path: infra\n", yaml, re.MULTILINE):
        problems.append("azure.yaml infra.path is not infra")
    main = strip_comments(files["main.bicep"])
    base_tags = top_level_entries(declarations(main, "var")["baseTags"].split("=", 1)[1])
    if base_tags.get("azd-env-name") != "environmentName":
        problems.append("resources are not tagged azd-env-name: environmentName")
    _, site = the_site(files)
    if f"'azd-service-name': '{service.group(1)}'" not in (site.get("tags") or ""):
        problems.append(f"the Function App is not tagged azd-service-name: {service.group(1)}")
    return problems


def kql_files(files: Files) -> dict[str, str]:
    return {name: text for name, text in files.items() if name.endswith(".kql")}


# Counters of a run summary the queries read (README "Run summary"; flows add counters of their own).
SUMMARY_COUNTS = {"read", "created", "updated", "unchanged", "deleted", "dead_lettered"}


def summary_fields_used(kql: str) -> set[str]:
    """Summary fields a query reads (`s.outcome`, `s.counts.created` -> outcome, counts.created)."""
    used = set()
    for path in re.findall(r"\bs\.(\w+(?:\.\w+)*)", kql):
        head, _, rest = path.partition(".")
        used.add(f"counts.{rest}" if head == "counts" else head)
    return used


def unknown_summary_fields(kql: str) -> list[str]:
    known = SUMMARY_FIELDS | PLANNED_SUMMARY_FIELDS | {f"counts.{c}" for c in SUMMARY_COUNTS}
    return sorted(summary_fields_used(kql) - known)


def check_alerts(files: Files) -> list[str]:
    rules = deployed(files, "Microsoft.Insights/scheduledQueryRules")
    names = {unquote(r.get("name")) or r.get("name") or "" for r in rules}
    problems = []
    wanted = {"failed-runs", "dead-letters", "cursor-age", "poison-queue"}
    found = {w for w in wanted for n in names if n.endswith(f"-{w}'") or n.endswith(f"-{w}")}
    problems += [f"no alert rule *-{w}" for w in sorted(wanted - found)]
    for rule in rules:
        criteria = (rule.get("properties", "criteria", "allOf") or "[{}]")[1:-1].strip()
        query = top_level_entries(criteria).get("query", "")
        load = re.search(r"loadTextContent\('\.\./queries/([\w-]+\.kql)'\)", query)
        if not load or f"queries/{load.group(1)}" not in files:
            problems.append(f"{rule.symbol}: query is not one of infra/queries/*.kql")
            continue
        placeholders = set(re.findall(r"__[A-Z]+__", files[f"queries/{load.group(1)}"]))
        replaced = set(re.findall(r"'(__[A-Z]+__)'", query))
        if placeholders != replaced:
            problems.append(f"{rule.symbol}: placeholders {placeholders} but replaces {replaced}")
    for name, kql in kql_files(files).items():
        code = strip_kql_comments(kql)
        if code.startswith("traces") and not code.startswith(SUMMARY_PREAMBLE):
            problems.append(f"{name}: does not read the run summaries as `run.summary {{json}}` traces")
        unknown = unknown_summary_fields(kql)
        if unknown:
            problems.append(f"{name}: reads run summary fields {unknown} that RunSummary does not have")
    diagnostics = deployed(files, "Microsoft.Insights/diagnosticSettings")
    if not any("StorageWrite" in (d.get("properties", "logs") or "") for d in diagnostics):
        problems.append("queue writes (StorageWrite) are not sent to Log Analytics: the poison alert sees nothing")
    main = files["main.bicep"]
    if literal(param_default(declarations(main, "param").get("optOutQueueName", ""))) != "optout-webhooks":
        problems.append("param optOutQueueName does not default to optout-webhooks")
    if "poisonQueueName: '${optOutQueueName}-poison'" not in strip_comments(main):
        problems.append("the poison alert does not watch <optOutQueueName>-poison")
    return problems


def strip_kql_comments(kql: str) -> str:
    return "\n".join(line for line in kql.split("\n") if not line.lstrip().startswith("//")).lstrip("\n")


def check_workbook(files: Files) -> list[str]:
    workbooks = deployed(files, "Microsoft.Insights/workbooks")
    if len(workbooks) != 1:
        return [f"expected one workbook, found {len(workbooks)}"]
    if workbooks[0].get("properties", "serializedData") != "loadTextContent('../workbook.json')":
        return ["the workbook's content is not infra/workbook.json"]
    try:
        content = json.loads(files["workbook.json"])
    except json.JSONDecodeError as error:
        return [f"workbook.json: {error}"]
    queries = {item["name"]: item["content"]["query"] for item in content["items"] if item.get("type") == 3}
    problems = [f"workbook has no {n} chart" for n in ("throughput", "lag", "failures", "deadletters")
                if n not in queries]  # fmt: skip
    for name, query in queries.items():
        if not query.startswith(SUMMARY_PREAMBLE):
            problems.append(f"workbook {name}: does not read the `run.summary {{json}}` traces")
        unknown = unknown_summary_fields(query)
        if unknown:
            problems.append(f"workbook {name}: reads fields {unknown} that RunSummary does not have")
    return problems


CHECKS: list[Callable[[Files], list[str]]] = [
    check_balanced,
    check_bicep_grammar,
    check_flex_plan,
    check_function_app_config,
    check_no_deprecated_settings,
    check_no_flex_unsupported_properties,
    check_site_update_strategy,
    check_api_versions,
    check_roles,
    check_connector_settings,
    check_settings_match_specs,
    check_secrets_from_key_vault,
    check_disabled_functions,
    check_storage_locked_down,
    check_host_storage_identity,
    check_app_insights,
    check_key_vault_rbac,
    check_local_modules_only,
    check_parameters_file,
    check_azd,
    check_alerts,
    check_workbook,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_infra_passes(check: Callable[[Files], list[str]]) -> None:
    assert check(load_infra()) == []


def test_infra_files_are_found() -> None:
    assert {"main.bicep", "main.bicepparam", "modules/functionapp.bicep", "modules/rbac.bicep",
            "modules/alerts.bicep", "workbook.json", "queries/failed-runs.kql"} <= set(load_infra())  # fmt: skip


# ---------------------------------------------------------------- each check fails on a broken copy

SITE_CONFIG = "    siteConfig: {\n      minTlsVersion: '1.2'\n"
BREAKAGES = [  # (check, file, text in the file, replacement)
    (check_balanced, "modules/functionapp.bicep", "      runtime: {\n", "      runtime: \n"),
    (check_balanced, "main.bicep", "'rg-${environmentName}'", "'rg-${environmentName'"),
    (check_bicep_grammar, "modules/workbook.bicep", "resource workbook 'Microsoft", "resourse workbook 'Microsoft"),
    (check_bicep_grammar, "main.bicep", "param dataverseClientId string\n", "param dataverseClientId\n"),
    (
        check_bicep_grammar,
        "modules/alerts.bicep",
        "    scopes: [\n      workspace.id\n    ]\n",
        "    scopes: [\n      workspace.id,\n    ]\n",
    ),
    (check_flex_plan, "modules/functionapp.bicep", "name: 'FC1'", "name: 'Y1'"),
    (check_flex_plan, "modules/functionapp.bicep", "reserved: true", "reserved: false"),
    (check_function_app_config, "modules/functionapp.bicep", "version: '3.11'", "version: '3.10'"),
    (
        check_function_app_config,
        "modules/functionapp.bicep",
        "maximumInstanceCount: maximumInstanceCount",
        "maximumInstanceCount: 100",
    ),
    (
        check_function_app_config,
        "modules/functionapp.bicep",
        "type: 'SystemAssignedIdentity'",
        "type: 'StorageAccountConnectionString'",
    ),
    (
        check_no_deprecated_settings,
        "main.bicep",
        "  SYNC_CONFIG: syncConfig\n",
        "  SYNC_CONFIG: syncConfig\n  FUNCTIONS_WORKER_RUNTIME: 'python'\n",
    ),
    (
        check_no_deprecated_settings,
        "main.bicep",
        "  SYNC_CONFIG: syncConfig\n",
        "  SYNC_CONFIG: syncConfig\n  WEBSITE_TIME_ZONE: 'UTC'\n",
    ),
    (
        check_no_flex_unsupported_properties,
        "modules/functionapp.bicep",
        SITE_CONFIG,
        SITE_CONFIG + "      ftpsState: 'Disabled'\n",
    ),
    (
        check_no_flex_unsupported_properties,
        "modules/functionapp.bicep",
        SITE_CONFIG,
        SITE_CONFIG + "      alwaysOn: true\n",
    ),
    (
        check_no_flex_unsupported_properties,
        "modules/functionapp.bicep",
        "    httpsOnly: true\n",
        "    httpsOnly: true\n    vnetRouteAllEnabled: true\n",
    ),
    (check_site_update_strategy, "modules/functionapp.bicep", "type: siteUpdateStrategy", "type: 'Recreate'"),
    (
        check_site_update_strategy,
        "main.bicep",
        "param siteUpdateStrategy string = 'RollingUpdate'",
        "param siteUpdateStrategy string = 'Recreate'",
    ),
    (
        check_api_versions,
        "modules/functionapp.bicep",
        "'Microsoft.Web/sites@2025-05-01' =",
        "'Microsoft.Web/sites@2024-04-01' =",
    ),
    (check_api_versions, "modules/keyvault.bicep", "vaults@2025-05-01", "vaults@2023-07-01"),
    (
        check_api_versions,
        "modules/storage.bicep",
        "'Microsoft.Storage/storageAccounts@2025-06-01'",
        "'Microsoft.Storage/storageAccounts@2023-05-01'",
    ),
    (check_roles, "modules/rbac.bicep", "4633458b-17de-408a-b874-0445c86b69e6", "00000000-0000-0000-0000-000000000000"),
    (check_roles, "modules/rbac.bicep", "  scope: appInsights\n", "  scope: storage\n"),
    (
        check_roles,
        "modules/rbac.bicep",
        "guid(vault.id, principalId, roleIds.keyVaultSecretsUser)",
        "guid(principalId, roleIds.keyVaultSecretsUser)",
    ),
    (
        check_roles,
        "modules/rbac.bicep",
        "    principalType: 'ServicePrincipal'\n  }\n}\n\n// The connector",
        "  }\n}\n\n// The connector",
    ),
    (check_connector_settings, "main.bicep", "  CAMPAIGN_SCOPES: campaignScopes\n", ""),
    (check_connector_settings, "main.bicep", "  STATE_STORAGE_ACCOUNT: storage.outputs.name\n", ""),
    (
        check_connector_settings,
        "main.bicep",
        "  TELEMETRY_EXPORT: telemetryExport\n",
        "  TELEMETRY_EXPORT: telemetryExport\n  SYNC_CONFIGG: 'x'\n",
    ),
    (check_connector_settings, "main.bicep", "      connectorSettings,\n", ""),
    (
        check_connector_settings,
        "main.bicep",
        "var sftpSettings = sftpEnabled ? {\n",
        "var sftpSettings = true ? {\n",
    ),
    (
        check_connector_settings,
        "main.bicep",
        "  CAMPAIGN_SCOPES: campaignScopes\n",
        "  CAMPAIGN_SCOPES: campaignScopes\n  SFTP_HOST: sftpHost\n",
    ),
    (
        check_connector_settings,
        "main.bicep",
        "var dataverseSecretReference = useCertificate ? {\n",
        "var dataverseSecretReference = sftpEnabled ? {\n",
    ),
    (
        check_connector_settings,
        "main.bicep",
        "var dataverseAuthSettings = useCertificate ? {\n",
        "var dataverseAuthSettings = !useCertificate ? {\n",
    ),
    (
        check_settings_match_specs,
        "main.bicep",
        "param campaignBaseUrl string = 'https://mc.adobe.io'",
        "param campaignBaseUrl string = 'https://mc.adobe.io/${campaignOrganization}/campaign'",
    ),
    (
        check_settings_match_specs,
        "main.bicep",
        "additional_info.projectedProductContext,campaign_sdk'\n",
        "additional_info.projectedProductContext,campaign_sdk,campaign_config_server_general'\n",
    ),
    (check_settings_match_specs, "main.bicep", "param sftpPort int = 22", "param sftpPort int = 2222"),
    (
        check_settings_match_specs,
        "main.bicep",
        "param syncConfig string = 'config/sync.json'",
        "param syncConfig string = 'sync.json'",
    ),
    (
        check_settings_match_specs,
        "main.bicep",
        "  CAMPAIGN_IMS_URL: campaignImsUrl\n",
        "  CAMPAIGN_IMS_URL: campaignBaseUrl\n",
    ),
    (check_settings_match_specs, "main.bicep", "[DATAVERSE_AUTHORITY_HOST] Entra", "[DATAVERSE_AUTHORITY] Entra"),
    (
        check_secrets_from_key_vault,
        "main.bicep",
        "SFTP_PRIVATE_KEY: '@Microsoft.KeyVault(",
        "SFTP_PRIVATE_KEY: '-----BEGIN KEY-----(",
    ),
    (
        check_secrets_from_key_vault,
        "main.bicep",
        "      hostSettings,\n      secretReferenceSettings\n",
        "      secretReferenceSettings,\n      hostSettings\n",
    ),
    (
        check_secrets_from_key_vault,
        "main.bicepparam",
        "param campaignClientId =",
        "param campaignClientSecret = 'hunter2'\nparam campaignClientId =",
    ),
    (check_disabled_functions, "main.bicep", "      disabledFunctionSettings,\n", ""),
    (
        check_disabled_functions,
        "main.bicep",
        "      connectorSettings,\n      disabledFunctionSettings,\n",
        "      disabledFunctionSettings,\n      connectorSettings,\n",
    ),
    (check_disabled_functions, "main.bicep", "name => 'true')", "name => 'false')"),
    (check_storage_locked_down, "modules/storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
    (check_storage_locked_down, "modules/storage.bicep", "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'"),
    (check_storage_locked_down, "modules/storage.bicep", "allowBlobPublicAccess: false", "allowBlobPublicAccess: true"),
    (
        check_storage_locked_down,
        "modules/storage.bicep",
        "stagingContainerName\n  properties: {\n    publicAccess: 'None'",
        "stagingContainerName\n  properties: {\n    publicAccess: 'Blob'",
    ),
    (
        check_host_storage_identity,
        "main.bicep",
        "AzureWebJobsStorage__credential: 'managedidentity'",
        "AzureWebJobsStorage: 'DefaultEndpointsProtocol=https'",
    ),
    (check_app_insights, "modules/monitoring.bicep", "DisableLocalAuth: true", "DisableLocalAuth: false"),
    (check_app_insights, "main.bicep", "'Authorization=AAD'", "''"),
    (check_key_vault_rbac, "modules/keyvault.bicep", "enableRbacAuthorization: true", "enableRbacAuthorization: false"),
    (
        check_local_modules_only,
        "main.bicep",
        "module storage 'modules/storage.bicep'",
        "module storage 'br/public:avm/res/storage/storage-account:0.8.3'",
    ),
    (check_local_modules_only, "main.bicep", "module rbac 'modules/rbac.bicep'", "module rbac 'modules/roles.bicep'"),
    (check_local_modules_only, "modules/workbook.bicep", "'../workbook.json'", "'../workbooks.json'"),
    (
        check_parameters_file,
        "main.bicepparam",
        "param campaignClientId = readEnvironmentVariable('CAMPAIGN_CLIENT_ID')\n",
        "",
    ),
    (check_parameters_file, "main.bicepparam", "param sftpHost =", "param sftpHostname = 'x'\nparam sftpHost ="),
    (check_azd, "../azure.yaml", "    host: function\n", "    host: appservice\n"),
    (check_azd, "main.bicep", "  'azd-env-name': environmentName\n", ""),
    (check_azd, "modules/functionapp.bicep", "'azd-service-name': 'api'", "'azd-service-name': 'web'"),
    (
        check_alerts,
        "modules/alerts.bicep",
        "resource cursorAge 'Microsoft.Insights/scheduledQueryRules@2023-12-01'",
        "resource cursorAge 'Microsoft.Insights/scheduledQueryRuless@2023-12-01'",
    ),
    (
        check_alerts,
        "modules/alerts.bicep",
        "'__RUNS__', string(failedRunsInARow)",
        "'__RUN__', string(failedRunsInARow)",
    ),
    (check_alerts, "queries/dead-letters.kql", "s.counts.dead_lettered", "s.counts.deadLettered"),
    (check_alerts, "queries/failed-runs.kql", "s.outcome", "s.result"),
    (
        check_alerts,
        "queries/cursor-age.kql",
        '| where message startswith "run.summary "\n',
        '| where message has "summary"\n',
    ),
    (check_alerts, "modules/alerts.bicep", "category: 'StorageWrite'", "category: 'StorageRead'"),
    (
        check_alerts,
        "main.bicep",
        "param optOutQueueName string = 'optout-webhooks'",
        "param optOutQueueName string = 'webhooks'",
    ),
    (check_workbook, "modules/workbook.bicep", "loadTextContent('../workbook.json')", "'{}'"),
    (check_workbook, "workbook.json", '"name": "lag"', '"name": "latency"'),
    (check_workbook, "workbook.json", "s.counts.read", "s.counts.rows_read"),
]


@pytest.mark.parametrize(
    ("check", "file", "old", "new"),
    BREAKAGES,
    ids=[f"{c.__name__}-{i}" for i, (c, *_rest) in enumerate(BREAKAGES)],
)
def test_check_fails_on_broken_copy(check: Callable[[Files], list[str]], file: str, old: str, new: str) -> None:
    files = load_infra()
    assert files[file].count(old) == 1, "the breakage must hit exactly one place of the real template"
    files[file] = files[file].replace(old, new)
    assert check(files), f"{check.__name__} did not notice the broken copy"


def test_every_check_has_a_breakage() -> None:
    assert {c for c, *_ in BREAKAGES} == set(CHECKS)


def test_comments_do_not_count() -> None:
    text = "// FUNCTIONS_WORKER_RUNTIME: 'python'\nvar url = 'https://x/${'y'}' /* WEBSITE_TIME_ZONE */\n"
    assert check_no_deprecated_settings({"x.bicep": text}) == []
    assert strip_comments(text).count("https://x/") == 1


def test_ternaries_and_unions_are_followed() -> None:
    variables = {"a": "= c ? {\n  X: 'x'\n} : {}", "b": "= {\n  Y: y\n}"}
    settings, dynamic = object_settings("union(a, b, extra, toObject(l, n => n, n => 'true'))", variables, "u")
    assert [(s.name, s.when) for s in settings] == [("X", (("c", True),)), ("Y", ())]
    assert dynamic == ["extra", "toObject(l, n => n, n => 'true')"]
