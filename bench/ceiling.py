"""The ceiling: a bare FastAPI endpoint returning a constant, served like the other two."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    """A constant: what the stack can serve on this machine with no work at all."""
    return {"status": "ok"}
