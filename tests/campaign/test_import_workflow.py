"""The initial-transfer import workflows the sandbox runs for real (docs/campaign-import-workflow.md): External
signal -> Transfer file -> Load file -> Reconciliation -> Update data, on files in the SFTP folder the sshd serves."""

from __future__ import annotations

import gzip
import io
import pathlib

import paramiko
import pytest

from sandbox.campaign import CampaignSandbox, SandboxConfig
from sandbox.sshd import SshdServer
from tests.fixtures.campaign import RawCampaign

PROFILES = "WKF_D365_IMPORT_PROFILE"
CARDS = "WKF_D365_IMPORT_LOYALTYCARD"
HEADER = "externalId;email;firstName;lastName;birthDate;denyListEmail;cusCrmSegment;cusLastPurchase\n"
PART1 = (
    HEADER
    + "c-1;ada@example.com;Ada;Lovelace;1815/12/10;1;vip;2024/05/01\n"
    + 'c-2;grace@example.org;"Grace; ""Amazing""";"Hopper\nde Vries";;0;;\n'
    + "c-3;;Émile 🎉;;;true;;\n"
)
PART2 = HEADER + "c-4;alan@example.net;Alan;Turing;1912/06/23;FALSE;;\n"


def write(folder: pathlib.Path, name: str, text: str, *, gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    (folder / name).write_bytes(gzip.compress(data) if gz else data)


def params(names: list[str], rows: int = 4, batch: str = "contacts-20261201T213000Z-5f3a9c") -> dict[str, object]:
    return {"batch": batch, "fileNames": ",".join(names), "rowCount": rows}


@pytest.fixture
def imports(campaign_sftp_sandbox: CampaignSandbox) -> pathlib.Path:
    folder = campaign_sftp_sandbox.import_folder
    write(folder, "contacts-20261201T213000Z-5f3a9c_part0001.csv", PART1)
    write(folder, "contacts-20261201T213000Z-5f3a9c_part0002.csv.gz", PART2, gz=True)
    return folder


NAMES = ["contacts-20261201T213000Z-5f3a9c_part0001.csv", "contacts-20261201T213000Z-5f3a9c_part0002.csv.gz"]


def test_import_creates_profiles_with_every_value_converted(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    assert campaign_raw.trigger(PROFILES, params(NAMES)).status_code == 200
    execution = campaign_raw.execution(PROFILES)
    assert execution["state"] == "finished"
    rows = {r["externalId"]: r for r in campaign_sftp_sandbox.rows("profile")}
    assert sorted(rows) == ["c-1", "c-2", "c-3", "c-4"]
    ada = rows["c-1"]
    assert (ada["email"], ada["birthDate"], ada["denyListEmail"]) == ("ada@example.com", "1815-12-10", True)
    assert (ada["cusCrmSegment"], ada["cusLastPurchase"]) == ("vip", "2024-05-01")
    assert rows["c-2"]["firstName"] == 'Grace; "Amazing"'
    assert rows["c-2"]["lastName"] == "Hopper\nde Vries"
    assert rows["c-2"]["birthDate"] == ""  # an empty field is an empty value
    assert (rows["c-3"]["firstName"], rows["c-3"]["email"], rows["c-3"]["denyListEmail"]) == ("Émile 🎉", "", True)
    assert rows["c-4"]["denyListEmail"] is False

    [run] = campaign_sftp_sandbox.import_history(PROFILES)
    assert (run["state"], run["inserted"], run["updated"], run["rejected"]) == ("finished", 4, 0, 0)
    assert [(f["name"], f["records"], f["loaded"]) for f in run["files"]] == [(NAMES[0], 3, 3), (NAMES[1], 1, 1)]
    assert run["rowCount"] == 4
    assert campaign_sftp_sandbox.triggers(PROFILES)[0]["importId"] == run["id"]


def test_importing_the_same_files_again_creates_no_duplicate(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    campaign_raw.trigger(PROFILES, params(NAMES))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    before = {r["externalId"]: r["lastModified"] for r in campaign_sftp_sandbox.rows("profile")}

    refused = campaign_raw.trigger(PROFILES, params(NAMES))
    assert refused.status_code == 400  # finished: it must be started again first
    assert "is not started" in refused.json()["message"]
    assert campaign_raw.command(PROFILES, "start").status_code == 200
    campaign_sftp_sandbox.advance_clock(600)  # the 10-minute rule between triggers
    assert campaign_raw.trigger(PROFILES, params(NAMES)).status_code == 200
    assert campaign_raw.execution(PROFILES)["state"] == "finished"

    rows = campaign_sftp_sandbox.rows("profile")
    assert len(rows) == 4
    assert {r["externalId"]: r["lastModified"] for r in rows} == before  # nothing changed, nothing moved
    second = campaign_sftp_sandbox.import_history(PROFILES)[1]
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 4)


def test_an_update_moves_only_the_changed_records_and_attributes(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    existing = campaign_sftp_sandbox.seed(
        "profile",
        [{"externalId": "c-4", "email": "old@example.net", "created": "2024-01-01 00:00:00.000Z"}],
    )[0]
    campaign_raw.trigger(PROFILES, params(NAMES[1:]))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    [alan] = campaign_sftp_sandbox.find_rows("profile", externalId="c-4")
    assert (alan["PKey"], alan["email"], alan["lastName"]) == (existing["PKey"], "alan@example.net", "Turing")
    assert alan["lastModified"] != "2024-01-01 00:00:00.000Z"
    times = campaign_sftp_sandbox.attribute_times("profile", alan["PKey"])
    assert times["email"] == alan["lastModified"]
    assert times["mobilePhone"] == "2024-01-01 00:00:00.000Z"  # not in the file: untouched
    assert campaign_sftp_sandbox.import_history()[0]["updated"] == 1


def test_rows_that_do_not_convert_are_rejected_and_counted(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign
) -> None:
    lines = [
        "externalId;email;birthDate;denyListEmail;firstName",
        "ok-1;a@example.com;2000/01/31;1;A",
        "bad-bool;b@example.com;2000/01/31;yes;B",
        "bad-date;c@example.com;31/01/2000;0;C",
        "bad-day;d@example.com;2000/02/30;0;D",
        "bad-mail;not-an-address;;0;E",
        "too-long;f@example.com;;0;" + "x" * 31,
        ";g@example.com;;0;no key",
        "short;h@example.com",
        'quote;i@example.com;;0;ab"c',
        "ok-2;j@example.com;;0;J",
    ]
    write(campaign_sftp_sandbox.import_folder, "b-1_part0001.csv", "\n".join(lines) + "\n")
    campaign_raw.trigger(PROFILES, params(["b-1_part0001.csv"], batch="b-1"))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"  # rejects do not fail the workflow
    assert sorted(r["externalId"] for r in campaign_sftp_sandbox.rows("profile")) == ["ok-1", "ok-2"]
    [run] = campaign_sftp_sandbox.import_history()
    [stats] = run["files"]
    assert (stats["records"], stats["loaded"], stats["rejected"], run["rejected"]) == (10, 2, 8, 8)
    assert [r["line"] for r in stats["rejects"]] == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = [r["reason"] for r in stats["rejects"]]
    assert reasons[0] == "column 'denyListEmail': not a valid boolean"
    assert reasons[3] == "column 'email': not a valid e-mail address"
    assert reasons[4] == "column 'firstName': longer than 30 characters"
    assert reasons[5] == "column 'externalId': the key is empty"
    assert reasons[6] == "2 fields where the header has 5"
    assert all("not-an-address" not in reason for reason in reasons)  # reasons never echo values


def test_custom_resource_import_by_its_key(campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign) -> None:
    text = "crmId;cardNumber;points;tier;validUntil;active\nL-1;0042;1200;gold;2027/12/31;1\nL-2;;-5;none;;0\n"
    write(campaign_sftp_sandbox.import_folder, "cards-1_part0001.csv", text)
    campaign_raw.trigger(CARDS, params(["cards-1_part0001.csv"], rows=2, batch="cards-1"))
    assert campaign_raw.execution(CARDS)["state"] == "finished"
    cards = {c["crmId"]: c for c in campaign_sftp_sandbox.rows("cusLoyaltyCard")}
    assert (cards["L-1"]["cardNumber"], cards["L-1"]["points"], cards["L-1"]["tier"]) == ("0042", 1200, "gold")
    assert (cards["L-1"]["validUntil"], cards["L-1"]["active"]) == ("2027-12-31", True)
    assert (cards["L-2"]["points"], cards["L-2"]["active"]) == (-5, False)


def test_the_batch_mask_when_no_file_names_are_given(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    write(imports, "contacts-20261201T213000Z-5f3a9c_part0003.csv.tmp", "half written")  # skipped
    campaign_raw.trigger(PROFILES, {"batch": "contacts-20261201T213000Z-5f3a9c", "rowCount": 4})
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    assert campaign_sftp_sandbox.import_history()[0]["fileNames"] == NAMES
    assert len(campaign_sftp_sandbox.rows("profile")) == 4


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ("absent", "no file matches 'absent_part*' in d365_loads/imports"),
        ("../../etc/passwd", "does not name a file mask"),
        ("evil\x07", "does not name a file mask"),
    ],
)
def test_a_batch_that_finds_no_file_fails_the_execution_and_writes_nothing(
    campaign_sftp_sandbox: CampaignSandbox,
    campaign_raw: RawCampaign,
    imports: pathlib.Path,
    batch: str,
    message: str,
) -> None:
    assert campaign_raw.trigger(PROFILES, params(NAMES, batch=batch)).status_code == 200
    execution = campaign_raw.execution(PROFILES)
    assert execution["state"] == "error"
    assert message in execution["lastError"]
    assert campaign_sftp_sandbox.rows("profile") == []
    assert campaign_raw.command(PROFILES, "start").status_code == 200
    assert "lastError" not in campaign_raw.execution(PROFILES)


def test_transfer_file_reads_the_mask_not_the_list_as_the_documented_workflow_does(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    # A part left under the batch's mask is imported although fileNames does not list it (the Transfer file
    # activity is configured with the mask): the connector must never leave such a file behind.
    campaign_raw.trigger(PROFILES, params(NAMES[:1], rows=3))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    assert sorted(r["externalId"] for r in campaign_sftp_sandbox.rows("profile")) == ["c-1", "c-2", "c-3", "c-4"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"externalId;shoeSize\nc-1;42\n", "column 'shoeSize' is not an attribute of 'profile'"),
        (b"email\na@example.com\n", "the key column 'externalId' is missing"),
        (b"externalId;lastModified\nc-1;2024/01/01 00:00:00\n", "'lastModified' is maintained by Campaign"),
        (b"externalId;email\nc-1;caf\xe9@example.com\n", "is not valid utf-8 text"),
        (b"\x1f\x8b\x08broken", None),
    ],
)
def test_a_file_that_does_not_fit_fails_the_execution(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, data: bytes, message: str | None
) -> None:
    name = "f_part0001.csv.gz" if message is None else "f_part0001.csv"
    folder = campaign_sftp_sandbox.import_folder
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    campaign_raw.trigger(PROFILES, params([name], batch="f"))
    execution = campaign_raw.execution(PROFILES)
    assert execution["state"] == "error"
    assert (message or "is not a complete gzip file") in execution["lastError"]
    assert campaign_sftp_sandbox.rows("profile") == []


def test_a_link_column_is_refused_as_not_modelled(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign
) -> None:
    write(campaign_sftp_sandbox.import_folder, "l_part0001.csv", "crmId;profile\nL-1;@x\n")
    campaign_raw.trigger(CARDS, params(["l_part0001.csv"], batch="l"))
    assert "linking records by file is not modelled" in campaign_raw.execution(CARDS)["lastError"]


def test_a_failed_import_is_visible_and_can_be_retried(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    campaign_sftp_sandbox.fail_next_import("Transfer file: connection to the SFTP server lost")
    campaign_raw.trigger(PROFILES, params(NAMES))
    execution = campaign_raw.execution(PROFILES)
    assert (execution["state"], execution["lastError"]) == (
        "error",
        "Transfer file: connection to the SFTP server lost",
    )
    assert campaign_sftp_sandbox.rows("profile") == []

    campaign_raw.command(PROFILES, "start")
    campaign_sftp_sandbox.advance_clock(600)
    campaign_raw.trigger(PROFILES, params(NAMES))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    assert len(campaign_sftp_sandbox.rows("profile")) == 4
    assert [run["state"] for run in campaign_sftp_sandbox.import_history()] == ["error", "finished"]


def test_an_import_delay_keeps_the_execution_running_on_the_sandbox_clock(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    campaign_sftp_sandbox.set_import_delay(300)
    campaign_raw.trigger(PROFILES, params(NAMES))
    assert campaign_raw.execution(PROFILES)["state"] == "running"
    assert campaign_sftp_sandbox.rows("profile") == []  # Update data has not run yet
    refused = campaign_raw.trigger(PROFILES, params(NAMES))
    assert refused.status_code == 400
    assert campaign_raw.command(PROFILES, "start").status_code == 400  # running: only stop is possible
    campaign_sftp_sandbox.advance_clock(299)
    assert campaign_raw.execution(PROFILES)["state"] == "running"
    campaign_sftp_sandbox.advance_clock(1)
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    assert len(campaign_sftp_sandbox.rows("profile")) == 4


def test_stop_abandons_a_running_import(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, imports: pathlib.Path
) -> None:
    campaign_sftp_sandbox.set_import_delay(60)
    campaign_raw.trigger(PROFILES, params(NAMES))
    assert campaign_raw.command(PROFILES, "stop").status_code == 200
    campaign_sftp_sandbox.advance_clock(120)
    assert campaign_raw.execution(PROFILES)["state"] == "stopped"
    assert campaign_sftp_sandbox.rows("profile") == []
    assert campaign_sftp_sandbox.import_history()[0]["state"] == "stopped"


def test_without_an_sftp_root_an_import_trigger_is_refused_loudly(
    campaign_sandbox: CampaignSandbox, campaign_raw: RawCampaign
) -> None:
    refused = campaign_raw.trigger(PROFILES, params(NAMES))
    assert refused.status_code == 501
    assert "without an SFTP root" in refused.json()["message"]
    assert campaign_raw.execution(PROFILES)["state"] == "started"


def test_files_uploaded_through_the_sshd_are_imported(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign, sshd_server: SshdServer
) -> None:
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(sshd_server.client_private_key))
    transport = paramiko.Transport((sshd_server.host, sshd_server.port))
    try:
        transport.connect(username=sshd_server.username, pkey=key)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        folder = str(campaign_sftp_sandbox.import_folder)
        campaign_sftp_sandbox.import_folder.mkdir(parents=True)
        with sftp.open(f"{folder}/up_part0001.csv.gz.part", "wb") as remote:
            remote.write(gzip.compress(PART2.encode("utf-8")))
        sftp.posix_rename(f"{folder}/up_part0001.csv.gz.part", f"{folder}/up_part0001.csv.gz")
    finally:
        transport.close()
    campaign_raw.trigger(PROFILES, params(["up_part0001.csv.gz"], rows=1, batch="up"))
    assert campaign_raw.execution(PROFILES)["state"] == "finished"
    assert [r["externalId"] for r in campaign_sftp_sandbox.rows("profile")] == ["c-4"]


def test_import_config_problems_are_listed_together(tmp_path: pathlib.Path) -> None:
    config = SandboxConfig(
        sftp_root=str(tmp_path / "missing"),
        import_folder="../outside",
        workflows=(
            {"id": "W1", "signals": {}, "import": {"resource": "cusNope", "key": "x"}},
            {"id": "W2", "signals": {}, "import": {"resource": "profile", "key": "shoeSize"}},
        ),
    )
    with pytest.raises(ValueError) as info:
        CampaignSandbox.start(config)
    message = str(info.value)
    for part in ("'cusNope' does not exist", "'shoeSize' is not a plain attribute", "import_folder", "missing"):
        assert part in message
