"""Builds the clients and stores from settings, once per process (warm invocations reuse them:
MSAL's token cache, the IMS token and the HTTP connection pools survive between timer ticks)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import threading
import time
from collections.abc import Callable, Mapping

from shared.clients.campaign import CampaignClient, build_campaign_client
from shared.clients.dataverse import DataverseClient, build_dataverse_client
from shared.config.errors import ConfigError, Problem
from shared.config.features import missing_settings
from shared.config.loader import load_sync_config
from shared.config.model import SyncConfig
from shared.http import RetryPolicy
from shared.settings import SPECS, Settings, load_settings
from shared.state.store import StateStore

APP_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SYNC_CONFIG = next(spec.default for spec in SPECS if spec.name == "SYNC_CONFIG") or ""


@dataclasses.dataclass
class Services:
    settings: Settings
    config: SyncConfig
    state: StateStore
    dataverse: DataverseClient
    campaign: CampaignClient


def build_state(settings: Settings) -> StateStore:
    options = {"prefix": settings.state.table_prefix, "container": settings.state.container}
    if settings.state.connection_string:
        return StateStore.from_connection_string(settings.state.connection_string.reveal(), **options)
    from azure.identity import DefaultAzureCredential  # only in Azure: managed identity

    assert settings.state.account_name
    return StateStore.from_account(settings.state.account_name, DefaultAzureCredential(), **options)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_total_wait=settings.run.max_retry_wait)


def build_dataverse(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> DataverseClient:
    dv = settings.dataverse
    return build_dataverse_client(
        url=dv.url,
        tenant_id=dv.tenant_id,
        client_id=dv.client_id,
        client_secret=dv.client_secret.reveal() if dv.client_secret else None,
        certificate=dv.certificate.reveal() if dv.certificate else None,
        certificate_thumbprint=dv.certificate_thumbprint,
        authority_host=dv.authority_host,
        page_size=dv.page_size,
        max_parallel=dv.max_parallel,
        verify=dv.verify,
        policy=retry_policy(settings),
        timeout=(settings.run.connect_timeout, settings.run.read_timeout),
        sleep=sleep,
    )


def build_campaign(settings: Settings, sleep: Callable[[float], None] = time.sleep) -> CampaignClient:
    cs = settings.campaign
    return build_campaign_client(
        cs.api_root,
        cs.ims_token_url,
        cs.client_id,
        cs.client_secret.reveal(),
        cs.scopes,
        policy=retry_policy(settings),
        timeout=(settings.run.connect_timeout, settings.run.read_timeout),
        sleep=sleep,
    )


def load_configuration(env: Mapping[str, str] | None = None) -> tuple[Settings, SyncConfig]:
    """App settings and the sync configuration, with the problems of both reported together."""
    env = os.environ if env is None else env
    problems: list[Problem] = []
    settings: Settings | None = None
    config: SyncConfig | None = None
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        problems += exc.problems
    sync_config = settings.sync_config if settings else (env.get("SYNC_CONFIG", "").strip() or DEFAULT_SYNC_CONFIG)
    try:
        config = load_sync_config(sync_config, base_dir=APP_ROOT)
    except ConfigError as exc:
        problems += [dataclasses.replace(p, path=f"SYNC_CONFIG {p.path}") for p in exc.problems]
    if settings is not None and config is not None:
        problems += missing_settings(config, sftp_configured=settings.sftp is not None)
    if problems or settings is None or config is None:
        raise ConfigError(problems)
    return settings, config


def build_services(
    settings: Settings, config: SyncConfig | None = None, *, sleep: Callable[[float], None] = time.sleep
) -> Services:
    """Everything a flow needs. `sleep` is injectable so retry waits in tests are instant."""
    config = config or load_sync_config(settings.sync_config, base_dir=APP_ROOT)
    return Services(
        settings=settings,
        config=config,
        state=build_state(settings),
        dataverse=build_dataverse(settings, sleep),
        campaign=build_campaign(settings, sleep),
    )


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The process-wide services, built on first use from the app settings."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(*load_configuration())
        return _services
