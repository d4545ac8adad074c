from services.indexing.indexer import run_indexer
from services.worker.worker import Worker
from shared.runtime import Runtime, run_together


async def run(runtime: Runtime) -> None:
    # The indexer runs beside the worker: it builds a dataset's index once every chunk is a CAR.
    await run_together(Worker(runtime.db, runtime.config).run(),
                       run_indexer(runtime, runtime.config.deal_preparation_worker.poll_interval * 5))
