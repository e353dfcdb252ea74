"""App settings (environment variables; locally the `Values` of local.settings.json), typed and
validated once. Every missing or malformed setting is reported together, by name.

Secrets are wrapped in `Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
import pathlib
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shared.config.errors import ConfigError, Problem

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Secret:
    value: str = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def reveal(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class DataverseSettings:
    url: str  # https://<org>.crm.dynamics.com
    tenant_id: str
    client_id: str
    client_secret: Secret | None
    certificate: Secret | None  # PEM private key + certificate, instead of a secret
    certificate_thumbprint: str | None
    authority_host: str
    page_size: int
    max_parallel: int
    ca_bundle: str | None  # local sandbox only: trust its generated CA

    @property
    def verify(self) -> str | bool:
        return self.ca_bundle or True


@dataclasses.dataclass(frozen=True)
class CampaignSettings:
    base_url: str  # https://mc.adobe.io
    organization: str
    ims_url: str
    client_id: str
    client_secret: Secret
    scopes: str
    max_parallel: int

    @property
    def api_root(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.organization}/campaign/"

    @property
    def ims_token_url(self) -> str:
        """OAuth Server-to-Server token endpoint on the IMS host."""
        return f"{self.ims_url.rstrip('/')}/ims/token/v3"


@dataclasses.dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int
    username: str
    private_key: Secret
    passphrase: Secret | None
    host_key: str  # pinned: an OpenSSH public key line or a SHA256: fingerprint
    upload_folder: str
    export_folder: str
    archive_folder: str


@dataclasses.dataclass(frozen=True)
class StateSettings:
    connection_string: Secret | None  # Azurite or a key-based account
    account_name: str | None  # identity-based access (production)
    table_prefix: str
    container: str


@dataclasses.dataclass(frozen=True)
class RunSettings:
    time_budget_seconds: float  # a run stops cleanly before this, below the host's functionTimeout
    dead_letter_max_attempts: int
    connect_timeout: float
    read_timeout: float
    max_retry_wait: float
    initial_transfer_threshold: int


@dataclasses.dataclass(frozen=True)
class EgressSettings:
    schedule: str  # NCRONTAB of the egress timer
    batch_size: int  # operations per Dataverse $batch request, at most 1000


@dataclasses.dataclass(frozen=True)
class InitialTransferSettings:
    """How a table that goes by file is written and followed (the threshold itself is RunSettings')."""

    separator: str
    encoding: str
    gzip: bool
    part_rows: int  # a part ends at the first page boundary at or past this many rows
    schedule: str  # NCRONTAB of the flow's timer: also how often a running import is looked at
    import_timeout_hours: float  # an import still running after this long is reported failed


@dataclasses.dataclass(frozen=True)
class OptOutSettings:
    schedule: str  # NCRONTAB of the opt-out timer (Campaign file, dead-letter retries, queue backlog)
    queue_name: str  # the webhook queue; the Functions host moves failing messages to <name>-poison
    queue_connection_string: Secret | None  # OPTOUT_QUEUE_STORAGE: Azurite or a key-based account
    queue_service_uri: str | None  # OPTOUT_QUEUE_STORAGE__queueServiceUri: identity-based (Azure)
    webhook_secret: Secret | None  # optional shared header secret the webhook must carry


@dataclasses.dataclass(frozen=True)
class Settings:
    dataverse: DataverseSettings
    campaign: CampaignSettings
    sftp: SftpSettings | None
    state: StateSettings
    run: RunSettings
    sync_config: str  # inline JSON or a path relative to the app root
    ingress_schedule: str
    initial_transfer: InitialTransferSettings
    egress: EgressSettings = EgressSettings("0 */15 * * * *", 1000)
    telemetry_export: str = "off"  # off | azure-monitor (see shared.telemetry)
    optout: OptOutSettings = OptOutSettings("0 */15 * * * *", "optout-webhooks", None, None, None)


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    name: str
    description: str
    default: str | None = None
    secret: bool = False
    required: bool = True


# Every setting the app reads, in one place: the README table and local.settings.sample.json are checked against it.
SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("DATAVERSE_URL", "Environment URL, https://<org>.crm.dynamics.com"),
    SettingSpec("DATAVERSE_TENANT_ID", "Entra tenant id of the app registration"),
    SettingSpec("DATAVERSE_CLIENT_ID", "Application (client) id bound to a Dataverse application user"),
    SettingSpec("DATAVERSE_CLIENT_SECRET", "Client secret (or the certificate settings)", secret=True, required=False),
    SettingSpec("DATAVERSE_CERTIFICATE", "PEM private key and certificate, instead of a secret", secret=True,
                required=False),
    SettingSpec("DATAVERSE_CERTIFICATE_THUMBPRINT", "SHA-1 thumbprint of DATAVERSE_CERTIFICATE", required=False),
    SettingSpec("DATAVERSE_AUTHORITY_HOST", "Entra authority host, scheme and host only (no tenant path)",
                "https://login.microsoftonline.com"),
    SettingSpec("DATAVERSE_PAGE_SIZE", "Rows per page (odata.maxpagesize), 1-5000", "5000"),
    SettingSpec("DATAVERSE_MAX_PARALLEL", "Concurrent Dataverse requests, 1-52", "4"),
    SettingSpec("DATAVERSE_CA_BUNDLE", "Extra CA bundle to trust (local sandbox only)", required=False),
    SettingSpec("CAMPAIGN_BASE_URL", "Campaign API host, scheme and host only (a trailing /<org>/campaign is dropped)",
                "https://mc.adobe.io"),
    SettingSpec("CAMPAIGN_ORGANIZATION", "Campaign tenant id (<tenant>, or <tenant>-mkt-stage)"),
    SettingSpec("CAMPAIGN_IMS_URL", "Adobe IMS host, scheme and host only (no /ims/token path)",
                "https://ims-na1.adobelogin.com"),
    SettingSpec("CAMPAIGN_CLIENT_ID", "OAuth Server-to-Server client id (also the X-Api-Key)"),
    SettingSpec("CAMPAIGN_CLIENT_SECRET", "OAuth Server-to-Server client secret", secret=True),
    SettingSpec("CAMPAIGN_SCOPES", "Comma-separated IMS scopes from the Developer Console credential",
                "openid,AdobeID,read_organizations,additional_info.projectedProductContext,campaign_sdk"),
    SettingSpec("CAMPAIGN_MAX_PARALLEL", "Concurrent Campaign writes, 1-64", "8"),
    SettingSpec("SFTP_HOST", "Campaign SFTP host (needed by initial transfer, egress, Campaign->Dynamics opt-out)",
                required=False),
    SettingSpec("SFTP_PORT", "SFTP port", "22"),
    SettingSpec("SFTP_USERNAME", "SFTP user", required=False),
    SettingSpec("SFTP_PRIVATE_KEY", "SFTP private key (OpenSSH or PEM text)", secret=True, required=False),
    SettingSpec("SFTP_PRIVATE_KEY_PASSPHRASE", "Passphrase of SFTP_PRIVATE_KEY", secret=True, required=False),
    SettingSpec("SFTP_HOST_KEY", "Pinned server host key: 'ssh-ed25519 AAAA...' line or 'SHA256:...' fingerprint",
                required=False),
    SettingSpec("SFTP_UPLOAD_FOLDER", "Remote folder for initial-transfer files", "d365_loads/imports"),
    SettingSpec("SFTP_EXPORT_FOLDER", "Remote folder of Campaign's event and opt-out exports", "d365_loads/exports"),
    SettingSpec("SFTP_ARCHIVE_FOLDER", "Remote folder processed export files are moved to", "d365_loads/archive"),
    SettingSpec("STATE_STORAGE_CONNECTION_STRING", "State storage connection string (Azurite, local)", secret=True,
                required=False),
    SettingSpec("STATE_STORAGE_ACCOUNT", "State storage account name, reached with the app's managed identity",
                required=False),
    SettingSpec("STATE_TABLE_PREFIX", "Prefix of the state tables (letters and digits)", "sync"),
    SettingSpec("STATE_CONTAINER", "Blob container for staged files", "sync-staging"),
    SettingSpec("SYNC_CONFIG", "Sync configuration: inline JSON, or a path relative to the app root",
                "config/sync.json"),
    SettingSpec("INGRESS_SCHEDULE", "NCRONTAB (UTC) of the ingress timer", "0 */5 * * * *"),
    SettingSpec("EGRESS_SCHEDULE", "NCRONTAB (UTC) of the egress timer", "0 */15 * * * *"),
    SettingSpec("EGRESS_BATCH_SIZE", "Dataverse operations per $batch request of egress, 1-1000", "1000"),
    SettingSpec("RUN_TIME_BUDGET_SECONDS", "A run stops cleanly after this long (keep below functionTimeout)", "1500"),
    SettingSpec("DEAD_LETTER_MAX_ATTEMPTS", "Attempts before a dead letter is no longer retried", "5"),
    SettingSpec("HTTP_CONNECT_TIMEOUT_SECONDS", "Connect timeout of every HTTP call", "10"),
    SettingSpec("HTTP_READ_TIMEOUT_SECONDS", "Read timeout of every HTTP call", "120"),
    SettingSpec("HTTP_MAX_RETRY_WAIT_SECONDS", "Cap of all retry waits of one request; 429 and 503 are retried until "
                "it is reached, other transient errors at most 6 tries", "300"),
    SettingSpec("INITIAL_TRANSFER_THRESHOLD", "Tables with more rows load through files and SFTP", "500000"),
    SettingSpec("INITIAL_TRANSFER_SEPARATOR", "Column separator of import files: one character, or 'tab'", ";"),
    SettingSpec("INITIAL_TRANSFER_ENCODING", "Text encoding of import files (utf-8, or a Latin one)", "utf-8"),
    SettingSpec("INITIAL_TRANSFER_GZIP", "Gzip import files (.csv.gz): true or false", "true"),
    SettingSpec("INITIAL_TRANSFER_PART_ROWS", "Rows per import file part (cut at the next page boundary)", "100000"),
    SettingSpec("INITIAL_TRANSFER_SCHEDULE", "NCRONTAB (UTC) of the initial-transfer timer (also its import polling)",
                "0 */2 * * * *"),
    SettingSpec("INITIAL_TRANSFER_IMPORT_TIMEOUT_HOURS", "An import still running after this long is reported failed",
                "24"),
    SettingSpec("TELEMETRY_EXPORT", "off, or azure-monitor: a process outside the Functions host (the CLI) sends its "
                "logs to APPLICATIONINSIGHTS_CONNECTION_STRING itself", "off"),
    SettingSpec("OPTOUT_SCHEDULE", "NCRONTAB (UTC) of the opt-out timer: Campaign's opt-out file, retries",
                "0 */15 * * * *"),
    SettingSpec("OPTOUT_QUEUE", "Storage queue between the opt-out webhook and its processor", "optout-webhooks"),
    SettingSpec("OPTOUT_QUEUE_STORAGE", "Connection string of the queue's account (local); default: the state "
                "storage", secret=True, required=False),
    SettingSpec("OPTOUT_QUEUE_STORAGE__queueServiceUri", "Queue service URI, reached with the app's managed "
                "identity (Azure; with OPTOUT_QUEUE_STORAGE__credential=managedidentity)", required=False),
    SettingSpec("OPTOUT_QUEUE_STORAGE__credential", "With the queue service URI: how the Functions host's queue "
                "trigger signs in (the connector reads neither)", "managedidentity"),
    SettingSpec("OPTOUT_WEBHOOK_SECRET", "Optional shared secret the webhook sends in x-optout-webhook-secret",
                secret=True, required=False),
)  # fmt: skip

_SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
TELEMETRY_EXPORTS = ("off", "azure-monitor")
_NCRONTAB = re.compile(r"^\S+( \S+){4,5}$")


class _Reader:
    """Reads settings and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        spec = _SPEC_BY_NAME[name]
        value = self.env.get(name, "").strip()
        if value:
            return value
        if spec.default is not None:
            return spec.default
        return None

    def text(self, name: str, required: bool | None = None) -> str:
        value = self.raw(name)
        if value is None:
            if _SPEC_BY_NAME[name].required if required is None else required:
                self.problems.append(Problem(name, f"missing: {_SPEC_BY_NAME[name].description}"))
            return ""
        return value

    def optional(self, name: str) -> str | None:
        return self.raw(name)

    def secret(self, name: str, required: bool | None = None) -> Secret | None:
        value = self.text(name, required)
        if value.startswith("@Microsoft.KeyVault("):
            # App Service hands over the reference text itself when it cannot resolve it.
            self.problems.append(Problem(name, "Key Vault reference not resolved: check the secret exists and the "
                                         "app's identity has Key Vault Secrets User"))  # fmt: skip
            return None
        return Secret(value) if value else None

    def url(self, name: str) -> str:
        value = self.text(name)
        if value and not re.match(r"^https?://[^\s/]+", value):
            self.problems.append(Problem(name, "expected an http(s) URL"))
        return value.rstrip("/")

    def host(self, name: str, organization: str = "") -> str:
        """A base URL that must be scheme and host only: the code appends every path itself.

        CAMPAIGN_BASE_URL is also accepted with its own `/<organization>/campaign` path (as Adobe writes
        the API root), which is dropped; any other path is a problem naming the setting.
        """
        value = self.url(name)
        parts = urllib.parse.urlsplit(value)
        if not value or not parts.netloc:
            return value
        path = parts.path.rstrip("/")
        segments = path.strip("/").split("/")
        if organization and len(segments) == 2 and segments[1] == "campaign":
            if segments[0] == organization:
                path = ""
            else:
                self.problems.append(Problem(name, f"its path names organization {segments[0]!r}, not "
                                             f"CAMPAIGN_ORGANIZATION {organization!r}: give the host only, "
                                             f"e.g. {_SPEC_BY_NAME[name].default}"))  # fmt: skip
                return value
        if path or parts.query or parts.fragment:
            extra = path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
            self.problems.append(Problem(name, f"expected the host only, e.g. {_SPEC_BY_NAME[name].default}, "
                                         f"without {extra!r}"))  # fmt: skip
        return f"{parts.scheme}://{parts.netloc}"

    def number(self, name: str, cast: Callable[[str], T], low: float, high: float) -> T:
        value = self.text(name)
        try:
            result = cast(value)
        except ValueError:
            self.problems.append(Problem(name, f"expected a number from {low:g} to {high:g}, got {value!r}"))
            return cast(_SPEC_BY_NAME[name].default or "0")
        if not low <= float(result) <= high:  # type: ignore[arg-type]
            self.problems.append(Problem(name, f"expected a number from {low:g} to {high:g}, got {value!r}"))
        return result


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    r = _Reader(env)

    secret, certificate = r.secret("DATAVERSE_CLIENT_SECRET", False), r.secret("DATAVERSE_CERTIFICATE", False)
    thumbprint = r.optional("DATAVERSE_CERTIFICATE_THUMBPRINT")
    if not secret and not certificate:
        r.problems.append(Problem("DATAVERSE_CLIENT_SECRET", "missing: set it, or DATAVERSE_CERTIFICATE and "
                                  "DATAVERSE_CERTIFICATE_THUMBPRINT"))  # fmt: skip
    if certificate and not thumbprint:
        r.problems.append(Problem("DATAVERSE_CERTIFICATE_THUMBPRINT", "missing: required with DATAVERSE_CERTIFICATE"))
    ca_bundle = r.optional("DATAVERSE_CA_BUNDLE")
    if ca_bundle and not pathlib.Path(ca_bundle).is_file():
        r.problems.append(Problem("DATAVERSE_CA_BUNDLE", "no such file"))
    dataverse = DataverseSettings(
        url=r.url("DATAVERSE_URL"),
        tenant_id=r.text("DATAVERSE_TENANT_ID"),
        client_id=r.text("DATAVERSE_CLIENT_ID"),
        client_secret=secret,
        certificate=certificate,
        certificate_thumbprint=thumbprint,
        authority_host=r.host("DATAVERSE_AUTHORITY_HOST"),
        page_size=r.number("DATAVERSE_PAGE_SIZE", int, 1, 5000),
        max_parallel=r.number("DATAVERSE_MAX_PARALLEL", int, 1, 52),
        ca_bundle=ca_bundle,
    )
    organization = r.text("CAMPAIGN_ORGANIZATION")
    campaign = CampaignSettings(
        base_url=r.host("CAMPAIGN_BASE_URL", organization),
        organization=organization,
        ims_url=r.host("CAMPAIGN_IMS_URL"),
        client_id=r.text("CAMPAIGN_CLIENT_ID"),
        client_secret=r.secret("CAMPAIGN_CLIENT_SECRET") or Secret(""),
        scopes=r.text("CAMPAIGN_SCOPES"),
        max_parallel=r.number("CAMPAIGN_MAX_PARALLEL", int, 1, 64),
    )
    if campaign.organization and not re.match(r"^[A-Za-z0-9_-]+$", campaign.organization):
        r.problems.append(Problem("CAMPAIGN_ORGANIZATION", "expected a tenant id (letters, digits, - and _)"))

    state = StateSettings(
        connection_string=r.secret("STATE_STORAGE_CONNECTION_STRING", False),
        account_name=r.optional("STATE_STORAGE_ACCOUNT"),
        table_prefix=r.text("STATE_TABLE_PREFIX"),
        container=r.text("STATE_CONTAINER"),
    )
    if not state.connection_string and not state.account_name:
        r.problems.append(Problem("STATE_STORAGE_ACCOUNT", "missing: set it (managed identity) or "
                                  "STATE_STORAGE_CONNECTION_STRING"))  # fmt: skip
    if state.table_prefix and not re.match(r"^[A-Za-z][A-Za-z0-9]{0,20}$", state.table_prefix):
        r.problems.append(Problem("STATE_TABLE_PREFIX", "expected 1-21 letters and digits, starting with a letter"))
    if state.container and not re.match(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", state.container):
        r.problems.append(Problem("STATE_CONTAINER", "expected a blob container name (3-63 lower-case, digits, -)"))

    run = RunSettings(
        time_budget_seconds=r.number("RUN_TIME_BUDGET_SECONDS", float, 10, 24 * 3600),
        dead_letter_max_attempts=r.number("DEAD_LETTER_MAX_ATTEMPTS", int, 1, 1000),
        connect_timeout=r.number("HTTP_CONNECT_TIMEOUT_SECONDS", float, 0.1, 600),
        read_timeout=r.number("HTTP_READ_TIMEOUT_SECONDS", float, 0.1, 3600),
        max_retry_wait=r.number("HTTP_MAX_RETRY_WAIT_SECONDS", float, 0, 3600),
        initial_transfer_threshold=r.number("INITIAL_TRANSFER_THRESHOLD", int, 1, 10**10),
    )
    schedule = r.text("INGRESS_SCHEDULE")
    egress = EgressSettings(r.text("EGRESS_SCHEDULE"), r.number("EGRESS_BATCH_SIZE", int, 1, 1000))
    for name, value in (("INGRESS_SCHEDULE", schedule), ("EGRESS_SCHEDULE", egress.schedule)):
        if value and not _NCRONTAB.match(value):
            r.problems.append(Problem(name, "expected an NCRONTAB expression of 5 or 6 fields (UTC)"))

    telemetry_export = r.text("TELEMETRY_EXPORT").lower()
    if telemetry_export not in TELEMETRY_EXPORTS:
        r.problems.append(Problem("TELEMETRY_EXPORT", f"expected one of {', '.join(TELEMETRY_EXPORTS)}"))

    optout = OptOutSettings(
        schedule=r.text("OPTOUT_SCHEDULE"),
        queue_name=r.text("OPTOUT_QUEUE"),
        queue_connection_string=r.secret("OPTOUT_QUEUE_STORAGE", False),
        queue_service_uri=r.optional("OPTOUT_QUEUE_STORAGE__queueServiceUri"),
        webhook_secret=r.secret("OPTOUT_WEBHOOK_SECRET", False),
    )
    if optout.schedule and not _NCRONTAB.match(optout.schedule):
        r.problems.append(Problem("OPTOUT_SCHEDULE", "expected an NCRONTAB expression of 5 or 6 fields (UTC)"))
    if optout.queue_name and not re.match(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,55}[a-z0-9]$", optout.queue_name):
        # 3-63 characters; 7 are kept for the host's -poison suffix.
        r.problems.append(Problem("OPTOUT_QUEUE", "expected a queue name: 3-56 lower-case letters, digits and -"))
    if optout.queue_service_uri and not re.match(r"^https?://[^\s/]+", optout.queue_service_uri):
        r.problems.append(Problem("OPTOUT_QUEUE_STORAGE__queueServiceUri", "expected an http(s) URL"))

    sftp = _sftp(r)
    initial_transfer = _initial_transfer(r)
    settings = Settings(
        dataverse=dataverse,
        campaign=campaign,
        sftp=sftp,
        state=state,
        run=run,
        sync_config=r.text("SYNC_CONFIG"),
        ingress_schedule=schedule,
        egress=egress,
        initial_transfer=initial_transfer,
        telemetry_export=telemetry_export,
        optout=optout,
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def _initial_transfer(r: _Reader) -> InitialTransferSettings:
    separator = r.text("INITIAL_TRANSFER_SEPARATOR")
    separator = "\t" if separator.lower() == "tab" else separator
    if len(separator) != 1 or separator in '"\r\n':
        r.problems.append(Problem("INITIAL_TRANSFER_SEPARATOR", "expected one character other than a quote or a "
                                  "line break, or 'tab'"))  # fmt: skip
    encoding = r.text("INITIAL_TRANSFER_ENCODING")
    if not _ascii_compatible(encoding):
        r.problems.append(Problem("INITIAL_TRANSFER_ENCODING", "expected utf-8 or a Latin encoding (latin-1, cp1252)"))
    gzip = r.text("INITIAL_TRANSFER_GZIP").lower()
    if gzip not in ("true", "false"):
        r.problems.append(Problem("INITIAL_TRANSFER_GZIP", "expected true or false"))
    schedule = r.text("INITIAL_TRANSFER_SCHEDULE")
    if schedule and not _NCRONTAB.match(schedule):
        r.problems.append(
            Problem("INITIAL_TRANSFER_SCHEDULE", "expected an NCRONTAB expression of 5 or 6 fields (UTC)")
        )
    return InitialTransferSettings(
        separator=separator,
        encoding=encoding,
        gzip=gzip != "false",
        part_rows=r.number("INITIAL_TRANSFER_PART_ROWS", int, 1, 10**8),
        schedule=schedule,
        import_timeout_hours=r.number("INITIAL_TRANSFER_IMPORT_TIMEOUT_HOURS", float, 0.1, 24 * 30),
    )


def _ascii_compatible(encoding: str) -> bool:
    """Separators, quotes and line ends must be the same bytes as in ASCII (UTF-8, Latin-1, cp1252...)."""
    try:
        return codecs.lookup(encoding).name != "" and ';,\t"\r\nAz09'.encode(encoding) == b';,\t"\r\nAz09'
    except LookupError:
        return False


def _sftp(r: _Reader) -> SftpSettings | None:
    """SFTP is optional as a group: absent entirely, or complete."""
    group = ("SFTP_HOST", "SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY")
    if not any(r.env.get(name, "").strip() for name in group):
        return None
    host_key = r.text("SFTP_HOST_KEY", True)
    if host_key and not (host_key.startswith("SHA256:") or re.match(r"^(ssh|ecdsa)-\S+ \S+", host_key)):
        r.problems.append(Problem("SFTP_HOST_KEY", "expected 'ssh-ed25519 AAAA...' or 'SHA256:<fingerprint>'"))
    return SftpSettings(
        host=r.text("SFTP_HOST", True),
        port=r.number("SFTP_PORT", int, 1, 65535),
        username=r.text("SFTP_USERNAME", True),
        private_key=r.secret("SFTP_PRIVATE_KEY", True) or Secret(""),
        passphrase=r.secret("SFTP_PRIVATE_KEY_PASSPHRASE", False),
        host_key=host_key,
        upload_folder=r.text("SFTP_UPLOAD_FOLDER"),
        export_folder=r.text("SFTP_EXPORT_FOLDER"),
        archive_folder=r.text("SFTP_ARCHIVE_FOLDER"),
    )


def read_local_settings(path: pathlib.Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as the Functions host would expose them.

    Raises ConfigError naming the file when it cannot be read or is not a JSON object of Values."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise ConfigError([Problem(str(path), f"cannot read: {e.strerror or type(e).__name__}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), "not UTF-8 text")]) from None
    except json.JSONDecodeError as e:
        raise ConfigError([Problem(str(path), f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]) from None
    except RecursionError:
        raise ConfigError([Problem(str(path), "invalid JSON: nested too deeply")]) from None
    values = data.get("Values", {}) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise ConfigError([Problem(str(path), 'expected a JSON object with a "Values" object')])
    return {str(k): str(v) for k, v in values.items()}
