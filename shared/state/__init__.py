"""Durable state in Azure Table and Blob Storage: checkpoints, run leases, the synced-record index,
dead letters, run summaries and blob staging."""
