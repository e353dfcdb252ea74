"""Microsoft's Dataverse SDK for Python, and Airbyte-shaped requests, against the Dataverse sandbox."""
