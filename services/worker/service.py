from shared.runtime import Runtime
from services.worker.worker import Worker


async def run(runtime: Runtime) -> None:
    await Worker(runtime.db, runtime.config).run()
