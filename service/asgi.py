"""The ASGI entry point for uvicorn: `service.asgi:app`."""

import gc

from service.app import create_app

app = create_app()

# The cycle collector, tuned for a server process. Everything built so far (modules, routes,
# schemas) lives as long as the process: frozen, the collector no longer walks it again and
# again. A request allocates a few thousand objects and frees nearly all of them by reference
# counting; at the default threshold (700) the collector ran during almost every list page.
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 10, 10)
