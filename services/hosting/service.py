from services.hosting.routes import routes
from shared.api import create_app, serve
from shared.runtime import Runtime

TITLE = "Singularity HTTP hosting service"


def app(runtime: Runtime):
    return create_app(runtime.config, runtime.db, routes, title=TITLE)


async def run(runtime: Runtime) -> None:
    settings = runtime.config.http_hosting_service
    await serve(app(runtime), settings.bind, settings.port)
