"""Metadata caches expire: warm processes see an operator's change within the bound."""

from shared.clients.ttl_cache import TtlCache


def test_entries_expire_after_their_max_age() -> None:
    now = [100.0]
    cache: TtlCache[str, int] = TtlCache(max_age=60, clock=lambda: now[0])
    assert cache.get("profile") is None
    cache.put("profile", 1)
    now[0] = 160.0
    assert cache.get("profile") == 1  # exactly at the bound: still fresh
    now[0] = 160.5
    assert cache.get("profile") is None
    assert cache.put("profile", 2) == 2 and cache.get("profile") == 2
