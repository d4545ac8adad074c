"""The ranking service's state and its rounds of metric collection.

A round runs the enabled sources in phases (see `sources.PHASES`), converts their values to the
declared types, and stores them. A source that fails stores nothing: its earlier values stay, with
their age, and its error is recorded in ProviderSource. One round at a time; a refresh asked
during a round waits for that round's answer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.ranking import store
from services.ranking.sources import PHASES, SOURCES, Round, Source, SourceError
from services.ranking.sources.base import convert
from services.ranking.table import Table
from shared import models
from shared.config import Config
from shared.criteria import STRING
from shared.runtime import run_together

log = logging.getLogger(__name__)

# A refresh answer lists at most this many changed values (and counts them all).
MAX_CHANGES_SHOWN = 1000
# Seconds a re-read of the table reaches back before the previous one: the clock skew between
# ranking hosts and the time a source's values take to be written after they are stamped.
RELOAD_MARGIN = 120.0


class Ranking:
    def __init__(self, config: Config, db: AsyncDatabase, session: aiohttp.ClientSession,
                 sources: dict[str, Source] | None = None):
        self.config = config
        self.db = db
        self.session = session
        enabled = config.ranking_service.sources
        self.sources = sources if sources is not None else {name: SOURCES[name]() for name in enabled}
        self.table = Table()
        self.loaded = asyncio.Event()
        self._loading = asyncio.Lock()
        self._round: asyncio.Task | None = None

    @property
    def known_metrics(self) -> dict[str, str]:
        """Every metric an enabled source declares, with its type."""
        known: dict[str, str] = {}
        for source in self.sources.values():
            known.update(source.metrics)
        return known

    def everyone(self) -> set[str]:
        return self.table.providers | set(self.config.ranking_service.providers)

    async def load(self) -> None:
        """(Re)load the table from ProviderMetric."""
        self.table = await Table.load(self.db)
        self.loaded.set()

    async def ensure_loaded(self) -> None:
        async with self._loading:
            if not self.loaded.is_set():
                await self.load()

    async def start(self) -> None:
        """Load the table (the API answers 503 until then), then run a round every refresh_interval
        and re-read what other hosts stored every reload_interval."""
        await self.ensure_loaded()
        await run_together(self.run_periodically(), self.reload_periodically())

    async def reload(self) -> int:
        """Apply the values other ranking hosts stored since the last read; how many were new."""
        await self.ensure_loaded()
        return await self.table.catch_up(self.db, RELOAD_MARGIN)

    async def refresh(self) -> dict:
        """Run a round now, or wait for the one running; its summary either way."""
        await self.ensure_loaded()  # a round compares with, and adds to, the loaded table
        if self._round is None or self._round.done():
            self._round = asyncio.ensure_future(self._run_round())
        # Shielded: a client that goes away does not cut a round short for everyone else.
        return await asyncio.shield(self._round)

    async def _run_round(self) -> dict:
        began = time.monotonic()
        at = models.now()
        ctx = Round(self.config, self.db, self.session, set(self.everyone()),
                    {p: self.table.row(p) for p in self.table.providers})
        summary: dict[str, Any] = {"startedAt": at, "sources": {}, "changed": [], "changedCount": 0}
        for phase in PHASES:
            names = [n for n in phase if n in self.sources]
            results = await asyncio.gather(*(self._collect(self.sources[n], ctx) for n in names))
            for name, (values, error, note) in zip(names, results):
                # Stamped when stored, not when the round began: a re-read on another host asks for the
                # values stamped since its last read, and a round's last phase may come minutes later.
                changes = await self._store(name, values, models.now()) if values is not None else []
                summary["changedCount"] += len(changes)
                room = MAX_CHANGES_SHOWN - len(summary["changed"])
                summary["changed"] += changes[:max(0, room)]
                summary["sources"][name] = {"ok": error is None, "error": error, "note": note,
                                            "providers": len(values or {}),
                                            "values": sum(len(m) for m in (values or {}).values())}
                await store.record_status(self.db, name, at, error, len(values or {}), note)
                for provider, metrics in (values or {}).items():
                    ctx.fresh.setdefault(provider, {}).update(metrics)
                    if self.sources[name].lists_providers:
                        ctx.tracked.add(provider)
        summary["providers"] = len(self.everyone())
        summary["seconds"] = round(time.monotonic() - began, 3)
        log.info("ranking round: %d providers, %d changed values in %.1f s", summary["providers"],
                 summary["changedCount"], summary["seconds"])
        return summary

    async def _collect(self, source: Source, ctx: Round) -> tuple[dict | None, str | None, str | None]:
        try:
            raw = await source.collect(ctx)
        except SourceError as exc:
            log.warning("ranking source %s failed: %s", source.name, exc)
            return None, str(exc), None
        except PyMongoError as exc:
            log.warning("ranking source %s: database error: %s", source.name, exc)
            return None, f"database error: {exc}", None
        values: dict[str, dict[str, Any]] = {}
        for provider, metrics in raw.items():
            if not isinstance(provider, str) or "|" in provider or not provider:
                continue
            converted = {}
            for name, value in metrics.items():
                kind = source.metrics.get(name)
                value = convert(kind, value) if kind else None
                if value is not None and not (kind == STRING and len(value) > 2048):
                    converted[name] = value
            if converted:
                values[provider] = converted
        skipped = getattr(source, "skipped", None)
        note = None
        if skipped:
            first = sorted(skipped)[0]
            note = f"{len(skipped)} providers skipped, e.g. {first}: {skipped[first]}"
        return values, None, note

    async def _store(self, source: str, values: dict[str, dict[str, Any]], at: float) -> list[dict]:
        await store.write_metrics(self.db, source, values, at,
                                  lambda provider, name: name in self.table.meta.get(provider, {}))
        changes = []
        for provider, metrics in values.items():
            for name, value in metrics.items():
                old = self.table.get(provider, name)
                known = name in self.table.meta.get(provider, {})
                if not known or old != value or type(old) is not type(value):
                    changes.append({"provider": provider, "metric": name, "old": old, "new": value})
                self.table.put(provider, source, name, value, at)
        return changes

    async def run_periodically(self) -> None:
        interval = self.config.ranking_service.refresh_interval
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away, say: try again next time
                log.exception("ranking round failed")
            await asyncio.sleep(interval)

    async def reload_periodically(self) -> None:
        interval = self.config.ranking_service.reload_interval
        while True:
            await asyncio.sleep(interval)
            try:
                applied = await self.reload()
            except PyMongoError as exc:  # the database went away: the table stays as it is until it is back
                log.warning("ranking: re-reading the table failed: %s", exc)
                continue
            except Exception:
                log.exception("ranking: re-reading the table failed")
                continue
            if applied:
                log.info("ranking: %d values stored by other hosts applied", applied)
