"""Liveness and readiness endpoints for orchestrators and load balancers.

Liveness never looks at dependencies: a database outage must not make Kubernetes
restart every pod. Readiness does, so traffic goes only where it can be served.
Neither needs authentication, and neither ever runs migrations.
"""

from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.ops.readiness import ReadinessProbe

HEALTH_PATH = "/health"
READY_PATH = "/ready"
PROBE_PATHS = (HEALTH_PATH, READY_PATH)

router = APIRouter(tags=["ops"])


class HealthStatus(BaseModel):
    status: Literal["ok"]


class ReadinessStatus(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


async def get_readiness_probe(request: Request) -> ReadinessProbe:
    return cast(ReadinessProbe, request.state.readiness_probe)


@router.get(HEALTH_PATH, response_model=HealthStatus, summary="Liveness probe")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    READY_PATH,
    response_model=ReadinessStatus,
    responses={503: {"model": ReadinessStatus, "description": "A dependency is not available"}},
    summary="Readiness probe",
)
async def ready(probe: Annotated[ReadinessProbe, Depends(get_readiness_probe)]) -> JSONResponse:
    report = await probe.check()
    return JSONResponse(
        {"status": "ready" if report.ready else "unavailable", "checks": report.checks},
        status_code=200 if report.ready else 503,
        headers={"Cache-Control": "no-store"},
    )
