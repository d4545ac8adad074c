"""`singularity run`: start this host's modules in one process, on the embedded or a given database."""
from __future__ import annotations

import importlib
import logging
import signal
from typing import List, Optional

from typing import TYPE_CHECKING

import typer

from cli.client import CliError
from cli.common import get_config

if TYPE_CHECKING:  # imported where used: every other command starts without pymongo and aiohttp
    from shared.config import Config
    from shared.embedded import EmbeddedDatabase

log = logging.getLogger("singularity")

# module name -> (config section that enables it, module holding `async def run(runtime)`)
MODULES = {
    "preparation": ("deal_preparation_service", "services.preparation.service"),
    "worker": ("deal_preparation_worker", "services.worker.service"),
    "dealmaking": ("deal_making_service", "services.dealmaking.service"),
    "tracking": ("deal_tracking_service", "services.tracking.service"),
    "hosting": ("http_hosting_service", "services.hosting.service"),
    "ranking": ("ranking_service", "services.ranking.service"),
    "replication": ("replication_service", "services.replication.service"),
    "dashboard": ("dashboard", "services.dashboard.service"),
}


def select_modules(config: Config, names: list[str]) -> list[str]:
    modules = MODULES
    if not names:
        chosen = [name for name, (section, _) in modules.items() if getattr(config, section).enabled]
    elif names == ["all"]:
        chosen = list(modules)
    else:
        unknown = [n for n in names if n not in modules]
        if unknown:
            raise CliError(f"unknown module {unknown[0]!r}; choose from: {', '.join(modules)} or all", 2)
        chosen = list(dict.fromkeys(names))
    if "replication" in chosen and "tracking" not in chosen and not config.deal_tracking_service.enabled:
        # Replicas are counted from tracked deal states: without tracking, a slashed or never
        # published deal would count for ever and nothing would be repaired.
        raise CliError("replication needs deal tracking: set [deal_tracking_service] enabled = true "
                       "(deal_tracking_service.enabled; tracking may run on another host of the suite)", 2)
    return chosen


def database_url(config: Config) -> str:
    from shared import database
    if not config.database.enabled:
        return config.connection.database
    name = database.database_name(config.connection.database)
    return f"mongodb://{config.database.bind}:{config.database.port}/{name}"


async def run_modules(config: Config, names: list[str], url: str, embedded: EmbeddedDatabase | None = None) -> None:
    import asyncio
    # Supervised from the start: the database may die while the modules connect.
    supervisor = asyncio.create_task(embedded.supervise(), name="database") if embedded else None
    try:
        await _run_modules(config, names, url)
    finally:
        if supervisor:  # only once every module has finished its cleanup, which may need the database
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)


async def _run_modules(config: Config, names: list[str], url: str) -> None:
    import asyncio

    from pymongo.errors import PyMongoError

    from shared import database, jobs, migrations
    from shared.runtime import Runtime
    try:
        runtime = await Runtime.connect(config, url)
    except PyMongoError as exc:
        raise CliError(f"cannot use the database at {url}: {exc}") from None
    try:
        await migrations.apply(runtime.db)  # before any module reads or writes
    except (migrations.MigrationError, PyMongoError) as exc:
        await runtime.close()
        raise CliError(f"database schema: {exc}") from None
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(importlib.import_module(MODULES[n][1]).run(runtime), name=n) for n in names]
    tasks.append(asyncio.create_task(jobs.announce(  # this run's heartbeat, for `singularity status`
        runtime.db, names, config.deal_preparation_worker.heartbeat_interval,
        {"embedded": config.database.enabled, "address": database.address(url)}), name="heartbeat"))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in done if task is not stopper]
        if failed:  # a module ended on its own (it cannot bind its port, say): stop them all
            error = failed[0].exception()
            raise CliError(f"module {failed[0].get_name()} stopped: {error or 'it returned'}")
    finally:
        for task in [stopper, *tasks]:
            task.cancel()
        await asyncio.gather(stopper, *tasks, return_exceptions=True)
        await runtime.close()


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(modules: Optional[List[str]] = typer.Argument(None, help="Modules to start (default: those enabled "
            f"in config.toml): {', '.join(MODULES)} or all.")) -> None:
        """Start this host's modules (and the embedded database) until Ctrl-C."""
        import asyncio

        from shared.embedded import EmbeddedDatabase, EmbeddedDatabaseError
        config = get_config()
        names = select_modules(config, modules or [])
        if not names:
            raise CliError("no module is enabled in the configuration; name one, or `all`", 2)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        embedded = None
        try:
            if config.database.enabled:
                embedded = EmbeddedDatabase(config.database.path, config.database.bind, config.database.port).start()
            log.info("starting %s", ", ".join(names))
            asyncio.run(run_modules(config, names, database_url(config), embedded))
        except EmbeddedDatabaseError as exc:
            raise CliError(str(exc)) from None
        finally:
            if embedded:
                embedded.stop()
