from litestar import Router

router = Router("/", route_handlers=[])
