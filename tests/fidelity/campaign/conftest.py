"""Adobe's Campaign Standard SDK (npm `@adobe/aio-lib-campaign-standard`, pinned in package.json) against the sandbox.

One Node process per test session runs `sdk_bridge.js`; each test gets a fresh sandbox state, a fresh IMS token and
a fresh SDK client (`sdk.call(method, *args)` -> SdkAnswer). Node and the package come from scripts/bootstrap.sh.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.campaign import CampaignSandbox, SandboxConfig

REPO = pathlib.Path(__file__).resolve().parents[3]
BRIDGE = pathlib.Path(__file__).with_name("sdk_bridge.js")
SDK_PACKAGE = REPO / "node_modules" / "@adobe" / "aio-lib-campaign-standard"
ANSWER_TIMEOUT = 30.0

# The default sandbox plus an unlinked custom resource (served under /customResources), for getAllBasicCustomResources.
FIDELITY_CONFIG = {
    "custom_resources": (
        *SandboxConfig().custom_resources,
        {"name": "cusStore", "key": "code", "linked": False, "attributes": {"code": "string", "city": "string"}},
    )
}


@dataclasses.dataclass
class SdkAnswer:
    ok: bool
    status: int | None
    body: Any = None
    url: str | None = None
    code: str | None = None
    message: str = ""


class SdkBridge:
    def __init__(self, sandbox_root: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: the Campaign fidelity suite runs Adobe's SDK with Node 20")
        if not SDK_PACKAGE.is_dir():
            pytest.fail(f"{SDK_PACKAGE} is missing: run scripts/bootstrap.sh (npm ci)")
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update({"NO_PROXY": "127.0.0.1,localhost", "REPO_ROOT": str(REPO), "CAMPAIGN_SANDBOX_ROOT": sandbox_root})
        self._process = subprocess.Popen(
            [node, str(BRIDGE)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._answers: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self._process.stdout, self._answers.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self._process.stderr, self._stderr.append), daemon=True).start()
        self._next_id = 0
        self._lock = threading.Lock()

    @staticmethod
    def _pump(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)

    def request(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps({"id": ident, **fields}) + "\n")
            self._process.stdin.flush()
            try:
                line = self._answers.get(timeout=ANSWER_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"the SDK bridge did not answer {fields!r}; stderr: {''.join(self._stderr)[-2000:]}")
            answer = json.loads(line)
            assert answer["id"] == ident, answer
            return dict(answer)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


class Sdk:
    """One SDK client (`sdk.init(tenantId, apiKey, accessToken)`) inside the bridge."""

    def __init__(self, bridge: SdkBridge, name: str) -> None:
        self._bridge = bridge
        self.name = name

    def call(self, method: str, *args: Any) -> SdkAnswer:
        answer = self._bridge.request(op="call", client=self.name, method=method, args=list(args))
        answer.pop("id")
        return SdkAnswer(**answer)


def ims_token(sandbox: CampaignSandbox) -> str:
    response = requests.post(
        sandbox.ims_url,
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "scope": "openid,AdobeID,campaign_sdk",
        },
        timeout=5,
    )
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
def fidelity_server() -> Iterator[CampaignSandbox]:
    with CampaignSandbox.start(SandboxConfig(**FIDELITY_CONFIG)) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def sdk_bridge(fidelity_server: CampaignSandbox) -> Iterator[SdkBridge]:
    bridge = SdkBridge(fidelity_server.root_url)
    yield bridge
    bridge.close()


@pytest.fixture
def acs(fidelity_server: CampaignSandbox) -> CampaignSandbox:
    fidelity_server.reset(SandboxConfig(**FIDELITY_CONFIG))
    return fidelity_server


@pytest.fixture
def make_sdk(sdk_bridge: SdkBridge, acs: CampaignSandbox) -> Any:
    counter = iter(range(1_000_000))

    def make(*, tenant: str | None = None, api_key: str | None = None, token: str | None = None) -> Sdk:
        name = f"client-{next(counter)}"
        answer = sdk_bridge.request(
            op="init",
            client=name,
            tenantId=tenant or acs.config.organization,
            apiKey=api_key or acs.api_key,
            accessToken=token or ims_token(acs),
        )
        assert answer["ok"], answer
        return Sdk(sdk_bridge, name)

    return make


@pytest.fixture
def sdk(make_sdk: Any) -> Sdk:
    return make_sdk()  # type: ignore[no-any-return]
