from shared import maintenance
from services.preparation.routes import routes
from shared.api import create_app, serve
from shared.runtime import Runtime, run_together

TITLE = "Singularity deal preparation service"


def app(runtime: Runtime):
    return create_app(runtime.config, runtime.db, routes, service="preparation", title=TITLE)


async def run(runtime: Runtime) -> None:
    settings = runtime.config.deal_preparation_service
    await run_together(
        serve(app(runtime), settings.bind, settings.port),
        maintenance.run(runtime.db, settings.worker_timeout, settings.maintenance_interval),
    )
