"""Two ranking hosts on one database: each re-reads what the other stored every reload_interval,
reading only the values stamped since its last read (by the updatedAt index), not the whole
collection."""
from __future__ import annotations

import asyncio
from typing import Any

from services.ranking import store
from services.ranking.ranking import RELOAD_MARGIN, Ranking
from services.ranking.sources import Round, Source
from services.ranking.table import Table
from shared import database, models
from shared.metric_catalog import METRICS
from tests.wait import wait_until


async def test_a_second_table_sees_the_first_ones_writes_without_a_restart(db):
    old = models.now() - 10 * RELOAD_MARGIN
    await store.write_metrics(db, "filrep", {"f01000": {"filrep.score": 10}, "f01001": {"filrep.score": 20}}, old)
    first, second = await Table.load(db), await Table.load(db)
    assert second.get("f01000", "filrep.score") == 10

    # The first host's round: a changed value and a provider the second host has never seen.
    stamp = models.now()
    values = {"f01000": {"filrep.score": 11}, "f02000": {"filrep.score": 5, "filrep.region": "Asia"}}
    await store.write_metrics(db, "filrep", values, stamp)
    for provider, metrics in values.items():
        for name, value in metrics.items():
            first.put(provider, "filrep", name, value, stamp)
    assert second.get("f01000", "filrep.score") == 10 and "f02000" not in second.providers

    assert await second.catch_up(db, RELOAD_MARGIN) == 3
    assert second.row("f01000") == {"filrep.score": 11}
    assert second.row("f02000") == {"filrep.score": 5, "filrep.region": "Asia"}
    assert second.meta["f02000"]["filrep.region"] == ("filrep", stamp)
    assert second.get("f01001", "filrep.score") == 20
    # Read again within the margin, the same values are not applied twice; nor are the first
    # host's own values, which it already holds.
    assert await second.catch_up(db, RELOAD_MARGIN) == 0
    assert await first.catch_up(db, RELOAD_MARGIN) == 0


async def test_a_re_read_asks_only_for_values_stamped_since_the_last_read(db):
    old = models.now() - 10 * RELOAD_MARGIN
    await store.write_metrics(db, "filrep", {f"f0{1000 + i}": {"filrep.score": i} for i in range(50)}, old)
    table = await Table.load(db)
    # Changed behind the table's back with a stamp newer than the table's, but older than its last
    # read: a re-read of the whole collection would apply it, a re-read by updatedAt does not.
    await db[models.PROVIDER_METRIC].update_one(
        {"_id": models.provider_metric_id("f01007", "filrep", "filrep.score")},
        {"$set": {"metricValue": 700, "updatedAt": old + 1}})
    assert await table.catch_up(db, RELOAD_MARGIN) == 0
    assert table.get("f01007", "filrep.score") == 7
    # The index the re-read goes by exists.
    indexes = await db[models.PROVIDER_METRIC].index_information()
    assert any(info["key"] == [("updatedAt", 1)] for info in indexes.values())


async def test_a_later_value_of_ours_is_not_overwritten_by_an_older_one(db):
    table = await Table.load(db)
    now = models.now()
    table.put("f01000", "filrep", "filrep.score", 99, now + 5)
    await store.write_metrics(db, "filrep", {"f01000": {"filrep.score": 1}}, now)
    assert await table.catch_up(db, RELOAD_MARGIN) == 0
    assert table.get("f01000", "filrep.score") == 99


class Scores(Source):
    """A listing whose values the test sets: what one host's rounds collect."""
    name = "filrep"
    metrics = METRICS["filrep"]
    lists_providers = True

    def __init__(self):
        self.values: dict[str, dict[str, Any]] = {}

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        return self.values


async def test_two_ranking_hosts_see_each_others_rounds(config, db, db_url):
    config.ranking_service.reload_interval = 0.1
    config.ranking_service.refresh_interval = 3600  # only the rounds the test asks for
    other_client = database.client(db_url)
    other_db = other_client[database.database_name(db_url)]
    here_source, there_source = Scores(), Scores()
    here = Ranking(config, db, None, {"filrep": here_source})
    there = Ranking(config, other_db, None, {"filrep": there_source})
    running = [asyncio.create_task(here.start()), asyncio.create_task(there.start())]
    try:
        await wait_until(lambda: here.loaded.is_set() and there.loaded.is_set(), what="both tables loaded")
        there_source.values = {"f03000": {"filrep.score": 42}}
        await there.refresh()
        await wait_until(lambda: here.table.get("f03000", "filrep.score") == 42,
                         what="the other host's value in this host's table")
        assert "f03000" in here.everyone()

        here_source.values = {"f03000": {"filrep.score": 43}, "f03001": {"filrep.reachable": True}}
        await here.refresh()
        await wait_until(lambda: there.table.row("f03000") == {"filrep.score": 43}
                         and there.table.get("f03001", "filrep.reachable") is True,
                         what="this host's values in the other host's table")
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await other_client.close()
