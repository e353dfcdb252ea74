"""The countable list of hostile inputs: `python -m tests.hostile.cases` prints the count per category.

Each entry is one row of a module-level table that a parametrised test runs (or one single-case test)."""

from __future__ import annotations

from tests.hostile import test_config, test_delimited_files, test_sftp_names, test_urls, test_webhook

CATEGORIES: dict[str, dict[str, int]] = {
    "mapping documents and settings": {
        "hostile mapping files": len(test_config.FILES),
        "documents with many problems at once": len(test_config.DOCUMENTS),
        "hostile local.settings.json files": len(test_config.SETTINGS_FILES),
        "CLI given a broken settings file": 1,
    },
    "delimited files": {
        "hostile rows in an opt-out file": len(test_delimited_files.ROWS) + 1,  # + LAST_ROW
        "unreadable files": len(test_delimited_files.UNREADABLE),
        "header-only file": 1,
    },
    "ids and filter values in URLs": {
        "Dataverse row ids": len(test_urls.ROW_IDS),
        "Campaign key values": len(test_urls.KEY_VALUES),
        "foreign Campaign hrefs": len(test_urls.HREFS),
    },
    "SFTP file names": {
        "names on disk": len(test_sftp_names.ON_DISK),
        "names only a hostile server lists": len(test_sftp_names.LISTED),
    },
    "webhook requests": {
        "hostile requests": len(test_webhook.CASES),
        "deeply nested queue message": 1,
    },
}


def main() -> int:
    total = 0
    for category, tables in CATEGORIES.items():
        count = sum(tables.values())
        total += count
        print(f"{category}: {count}  ({', '.join(f'{name} {n}' for name, n in tables.items())})")
    print(f"total: {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
