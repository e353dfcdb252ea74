"""The names runs count under, in one place: run summaries, checkpoints, status and the README use them.

StrEnum members are plain strings too, so summaries stay `{"created": 3}` in JSON and in comparisons.
"""

from __future__ import annotations

import enum


class Count(enum.StrEnum):
    # every flow
    READ = "read"  # records read from the source (rows and deletes)
    DEAD_LETTERED = "dead_lettered"  # failed on their own account, parked with the reason
    DEAD_LETTER_RETRIES_OK = "dead_letter_retries_ok"
    DEAD_LETTER_RETRIES_FAILED = "dead_letter_retries_failed"
    REJECTED_WITHOUT_ID = "rejected_without_id"  # no usable id: nothing to dead-letter it under; logged

    # writes into the target system
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # same payload as last written: no call made
    DELETED = "deleted"

    # ingress
    FILTERED_OUT = "filtered_out"
    DELETED_FILTERED_OUT = "deleted_filtered_out"  # synced, stopped passing the filters, deleted (deleteFilteredOut)
    DELETES_IGNORED = "deletes_ignored"  # a Dynamics delete while the mapping does not apply deletes
    DELETES_UNKNOWN = "deletes_unknown"  # a Dynamics delete of a record Campaign never had
    RESYNCS = "resyncs"  # full reads started because the delta token expired
    DELETED_AFTER_RESYNC = "deleted_after_resync"  # swept: synced, not met by a full read
    DELETES_UNKNOWN_AFTER_RESYNC = "deletes_unknown_after_resync"
    DELETES_IGNORED_AFTER_RESYNC = "deletes_ignored_after_resync"
    HANDED_TO_FILE = "handed_to_file"  # the initial load (or replay) goes by file: the initial transfer does it
    WAITING_FOR_TRANSFER = "waiting_for_transfer"  # a tick of a table whose initial transfer is not done

    # initial transfer
    EXPORTED = "exported"  # rows written into committed parts
    PARTS_STAGED = "parts_staged"
    PARTS_UPLOADED = "parts_uploaded"
    SIGNALS = "signals"  # import workflow triggers that Campaign took

    # egress (Campaign email events -> Dynamics activities; CREATED / UNCHANGED count the activities)
    TASKS_CREATED = "tasks_created"
    TASKS_UNCHANGED = "tasks_unchanged"  # the follow-up task existed already: left as it is (maybe completed)
    MALFORMED = "malformed"  # rows that are not events (dead-lettered with file and line)
    BOUNCES_SOFT = "bounces_soft"  # counted, never written (only hard bounces land)
    BOUNCES_IGNORED = "bounces_ignored"
    EVENT_TYPE_OFF = "event_type_off"  # events of a type the mapping turns off
    CONTACT_MISSING = "contact_missing"  # dead-lettered: no Dynamics contact with that id (yet); retried later
    NEVER_LANDS = "never_lands"  # dead-lettered for good: no externalId, or not a contact id
    WOULD_WRITE = "would_write"  # dry run: events that would be written (created, or found already there)
    FILES_ARCHIVED = "files_archived"
    FILES_UNREADABLE = "files_unreadable"  # left in place with the reason; later files go on

    # opt-out (per contact and attribute unless noted)
    OPTOUT_TO_CAMPAIGN = "optout_written_to_campaign"
    OPTOUT_TO_DYNAMICS = "optout_written_to_dynamics"
    OPTOUT_IN_STEP = "optout_in_step"  # both sides already agree
    OPTOUT_OLDER = "optout_older_skipped"  # older than what was applied (reordered delivery)
    OPTOUT_DUPLICATE = "optout_duplicate_skipped"  # the change already applied (redelivery, or the other path)
    OPTOUT_RULE_DECIDED = "optout_rule_decided"  # the sides differed: the bidirectional conflict rule decided
    OPTOUT_ECHOES = "optout_echoes_skipped"  # per message: the connector's own write, not sent back
    OPTOUT_NO_PROFILE = "optout_no_profile"  # per contact: no Campaign profile yet (ingress carries it)
    OPTOUT_CONTACT_MISSING = "optout_contact_missing"  # per contact: gone in Dynamics
    OPTOUT_WITHOUT_EXTERNAL_ID = "optout_without_external_id"  # file rows of profiles not from Dynamics
    OPTOUT_QUEUED = "optout_queued"  # messages waiting in the webhook queue (status of the webhooks scope)
    OPTOUT_POISONED = "optout_poisoned"  # messages in its poison queue


AFTER_RESYNC: dict[str, str] = {
    Count.DELETED: Count.DELETED_AFTER_RESYNC,
    Count.DELETES_UNKNOWN: Count.DELETES_UNKNOWN_AFTER_RESYNC,
    Count.DELETES_IGNORED: Count.DELETES_IGNORED_AFTER_RESYNC,
}
