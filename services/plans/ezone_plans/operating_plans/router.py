from fastapi import APIRouter

router = APIRouter(tags=["operating_plans"])
