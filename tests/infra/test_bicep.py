"""Structural tests of infra/: Bicep cannot be compiled offline, so the templates' text is checked for the
properties the deployment depends on. Each check returns its problems; every check is also run against a
deliberately broken copy of the templates to prove that it can fail."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra.bicep_text import (
    Resource,
    block_at,
    bracket_problems,
    declarations,
    resources,
    strip_comments,
    top_level_entries,
    unquote,
)

INFRA = Path(__file__).resolve().parents[2] / "infra"
Files = dict[str, str]  # path relative to infra/ -> text

ROLES = {  # role -> (GUID, resource type the assignment must be scoped to)
    "Storage Blob Data Owner": ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Microsoft.Storage/storageAccounts"),
    "Storage Queue Data Contributor": ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Microsoft.Storage/storageAccounts"),
    "Storage Table Data Contributor": ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Microsoft.Storage/storageAccounts"),
    "Monitoring Metrics Publisher": ("3913510d-42f4-4e42-8a64-420c390055eb", "Microsoft.Insights/components"),
    "Key Vault Secrets User": ("4633458b-17de-408a-b874-0445c86b69e6", "Microsoft.KeyVault/vaults"),
}
# Flex Consumption rejects or ignores these (functions-app-settings.md#flex-consumption-plan-deprecations).
DEPRECATED_SETTINGS = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_TIME_ZONE",
)
CONNECTOR_SETTINGS = (
    "DATAVERSE_URL",
    "DATAVERSE_TENANT_ID",
    "DATAVERSE_CLIENT_ID",
    "DATAVERSE_CLIENT_SECRET",
    "DATAVERSE_AUTHORITY_HOST",
    "CAMPAIGN_BASE_URL",
    "CAMPAIGN_ORGANIZATION",
    "CAMPAIGN_IMS_URL",
    "CAMPAIGN_CLIENT_ID",
    "CAMPAIGN_CLIENT_SECRET",
    "CAMPAIGN_SCOPES",
    "SFTP_HOST",
    "SFTP_PORT",
    "SFTP_USERNAME",
    "SFTP_PRIVATE_KEY",
    "SFTP_HOST_KEY",
    "SYNC_CONFIG",
    "INGRESS_SCHEDULE",
    "RUN_TIME_BUDGET_SECONDS",
)
SECRET_SETTINGS = ("DATAVERSE_CLIENT_SECRET", "CAMPAIGN_CLIENT_SECRET", "SFTP_PRIVATE_KEY")
KEY_VAULT_REFERENCE = re.compile(r"'@Microsoft\.KeyVault\(SecretUri=\$\{[^}]+\}secrets/(\$\{[\w.]+\}|[\w-]+)\)'")
SECRET_LIKE_PARAM = re.compile(r"(?i)client_?secret|private_?key|password|passphrase")


def load_infra() -> Files:
    return {str(p.relative_to(INFRA)): p.read_text() for p in sorted(INFRA.rglob("*.bicep*"))}


def all_resources(files: Files) -> list[Resource]:
    return [r for name, text in files.items() if name.endswith(".bicep") for r in resources(text)]


def deployed(files: Files, type_: str) -> list[Resource]:
    return [r for r in all_resources(files) if r.type == type_ and not r.existing]


def app_settings(files: Files) -> tuple[dict[str, str], list[str]]:
    """The settings main.bicep hands to the appsettings module, key -> raw value, and the union's arguments."""
    main = strip_comments(files["main.bicep"])
    match = re.search(r"^module\s+\w+\s+'modules/appsettings\.bicep'\s*=\s*\{", main, re.MULTILINE)
    assert match, "main.bicep: no module using modules/appsettings.bicep"
    params = top_level_entries(top_level_entries(block_at(main, match.end() - 1))["params"])
    call = re.fullmatch(r"union\(([\w\s,]+)\)", params["appSettings"])
    assert call, f"appSettings should be union(<object vars/params>), got {params['appSettings']!r}"
    parts = [p.strip() for p in call.group(1).split(",")]
    variables, parameters = declarations(main, "var"), declarations(main, "param")
    merged: dict[str, str] = {}
    for part in parts:
        if part in variables:
            merged.update(top_level_entries(variables[part].split("=", 1)[1].strip()))
        elif part not in parameters:
            raise AssertionError(f"union argument {part!r} is neither a var nor a param")
    return merged, parts


# ---------------------------------------------------------------- checks


def check_balanced(files: Files) -> list[str]:
    return [f"{name}: {p}" for name, text in files.items() for p in bracket_problems(text)]


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


def check_function_app_config(files: Files) -> list[str]:
    sites = [(n, r) for n, t in files.items() if n.endswith(".bicep") for r in resources(t)]
    sites = [(n, r) for n, r in sites if r.type == "Microsoft.Web/sites" and not r.existing]
    if len(sites) != 1:
        return [f"expected one Function App, found {len(sites)}"]
    file_name, site = sites[0]
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
        for name, text in files.items()
        for setting in DEPRECATED_SETTINGS
        if re.search(rf"\b{setting}\b", strip_comments(text))
    ]


def check_roles(files: Files) -> list[str]:
    problems = []
    for role, (guid, scope_type) in ROLES.items():
        holders = [
            (name, m.group(1))
            for name, text in files.items()
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
    settings, parts = app_settings(files)
    problems = [f"app setting {name} missing" for name in CONNECTOR_SETTINGS if name not in settings]
    if not any(key.startswith("STATE_STORAGE") for key in settings):
        problems.append("no STATE_STORAGE* app setting: the app cannot find its state storage")
    if "connectorSettings" not in parts or "param connectorSettings object" not in files["main.bicep"]:
        problems.append("no connectorSettings object param merged into the app settings")
    return problems


def check_secrets_from_key_vault(files: Files) -> list[str]:
    settings, parts = app_settings(files)
    problems = []
    for name in SECRET_SETTINGS:
        if not KEY_VAULT_REFERENCE.fullmatch(settings.get(name, "")):
            problems.append(f"{name} is not a Key Vault reference: {settings.get(name)!r}")
    variables = declarations(strip_comments(files["main.bicep"]), "var")
    if not set(SECRET_SETTINGS) <= set(top_level_entries(variables.get(parts[-1], "= {}").split("=", 1)[1])):
        problems.append("the Key Vault references are not the last union argument: a later object could replace them")
    for name, text in files.items():
        code = strip_comments(text)
        if "-----BEGIN" in code:
            problems.append(f"{name}: contains key material")
        for param in re.findall(r"^param\s+(\w+)", code, re.MULTILINE):
            if SECRET_LIKE_PARAM.search(param):
                problems.append(f"{name}: param {param} would carry a secret through the deployment")
        if re.search(r"@secure\(\)", code):
            problems.append(f"{name}: secure params are not needed; secrets are set in Key Vault")
    return problems


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
    for name, text in files.items():
        if re.search(r"listKeys\(|AccountKey=", strip_comments(text)):
            problems.append(f"{name}: uses storage account keys")
    return problems


def check_host_storage_identity(files: Files) -> list[str]:
    settings, _ = app_settings(files)
    problems = []
    if "AzureWebJobsStorage" in settings:
        problems.append("AzureWebJobsStorage is a connection string; use the identity-based __ settings")
    if unquote(settings.get("AzureWebJobsStorage__credential")) != "managedidentity":
        problems.append("AzureWebJobsStorage__credential is not managedidentity")
    if not {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri"} & set(settings):
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
    settings, _ = app_settings(files)
    if unquote(settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")) != "Authorization=AAD":
        problems.append("APPLICATIONINSIGHTS_AUTHENTICATION_STRING is not Authorization=AAD")
    if "APPLICATIONINSIGHTS_CONNECTION_STRING" not in settings:
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
    for name, text in files.items():
        if re.search(r"'(?:br/|br:|ts:)", strip_comments(text)):
            problems.append(f"{name}: registry or template-spec reference")
        for path in re.findall(r"^module\s+\w+\s+'([^']+)'", strip_comments(text), re.MULTILINE):
            if not (INFRA / Path(name).parent / path).is_file():
                problems.append(f"{name}: module path {path!r} is not a file in infra/")
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


CHECKS: list[Callable[[Files], list[str]]] = [
    check_balanced,
    check_flex_plan,
    check_function_app_config,
    check_no_deprecated_settings,
    check_roles,
    check_connector_settings,
    check_secrets_from_key_vault,
    check_storage_locked_down,
    check_host_storage_identity,
    check_app_insights,
    check_key_vault_rbac,
    check_local_modules_only,
    check_parameters_file,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_infra_passes(check: Callable[[Files], list[str]]) -> None:
    assert check(load_infra()) == []


def test_infra_files_are_found() -> None:
    assert {"main.bicep", "main.bicepparam", "modules/functionapp.bicep", "modules/rbac.bicep"} <= set(load_infra())


# ---------------------------------------------------------------- each check fails on a broken copy

BREAKAGES = [  # (check, file, text in the file, replacement)
    (check_balanced, "modules/functionapp.bicep", "      runtime: {\n", "      runtime: \n"),
    (check_balanced, "main.bicep", "'rg-${environmentName}'", "'rg-${environmentName'"),
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
        "union(connectorBaseSettings, connectorSettings, ",
        "union(connectorBaseSettings, ",
    ),
    (
        check_secrets_from_key_vault,
        "main.bicep",
        "SFTP_PRIVATE_KEY: '@Microsoft.KeyVault(",
        "SFTP_PRIVATE_KEY: '-----BEGIN KEY-----(",
    ),
    (
        check_secrets_from_key_vault,
        "main.bicep",
        "connectorSettings, hostSettings, secretReferenceSettings)",
        "secretReferenceSettings, hostSettings, connectorSettings)",
    ),
    (
        check_secrets_from_key_vault,
        "main.bicepparam",
        "param sftpHost =",
        "param campaignClientSecret = 'hunter2'\nparam sftpHost =",
    ),
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
    (check_parameters_file, "main.bicepparam", "param sftpHost = readEnvironmentVariable('SFTP_HOST')\n", ""),
    (check_parameters_file, "main.bicepparam", "param sftpHost =", "param sftpHostname = 'x'\nparam sftpHost ="),
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
