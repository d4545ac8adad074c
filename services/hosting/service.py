from services.hosting import access
from services.hosting.routes import routes
from shared.api import create_app, serve
from shared.runtime import Runtime

TITLE = "Singularity HTTP hosting service"


def create(config, db):
    return create_app(config, db, routes, tokens=access.policy(config), service="hosting", title=TITLE)


def app(runtime: Runtime):
    return create(runtime.config, runtime.db)


async def run(runtime: Runtime) -> None:
    settings = runtime.config.http_hosting_service
    await serve(app(runtime), settings.bind, settings.port)
