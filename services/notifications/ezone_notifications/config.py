"""Settings of the notifications service: the kit's settings plus anything only this service reads."""

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ezone_kit.settings import KitSettings
from pydantic import Field, field_validator, model_validator


class Settings(KitSettings):
    ezone_smtp_host: str = Field("127.0.0.1", description="SMTP server that sends alert emails (`ezone up` runs a local sink).")
    ezone_smtp_port: int = Field(1025, ge=1, le=65535)
    ezone_smtp_username: str | None = None
    ezone_smtp_password: str | None = None
    ezone_smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    ezone_email_from: str = Field("ezone alerts <alerts@ezone.local>", description="The From of alert emails.")

    # The board page's backend reads the other services here, with the signed-in person's token (board/backend.py):
    # addresses this service reaches, not necessarily browsers. `ezone up` sets them from --port-base.
    ezone_plans_url: str = Field("http://127.0.0.1:8001", description="The plans service as this one reaches it.")
    ezone_results_url: str = Field("http://127.0.0.1:8002", description="The results service as this one reaches it.")
    ezone_catalog_url: str = Field("http://127.0.0.1:8003", description="The services catalog as this one reaches it.")
    ezone_notifications_url: str = Field(
        "http://127.0.0.1:8004",
        description="This service as browsers reach it: the base of every link in alerts, emails and the board page.")

    ezone_default_timezone: str = Field("America/New_York", description="A member's time zone until they set their own.")
    ezone_default_digest_time: time = Field(
        time(7, 0), description="Local time of the daily digest of `info` alerts, until a member sets their own."
    )

    ezone_delivery_max_attempts: int = Field(8, ge=1, description="Attempts of an email or webhook before it is marked failed.")
    ezone_delivery_backoff_s: float = Field(2.0, gt=0, description="First retry delay; it doubles with each failed attempt.")
    ezone_delivery_backoff_max_s: float = Field(3600.0, gt=0)
    ezone_delivery_timeout_s: float = Field(10.0, gt=0, description="How long one SMTP or webhook call may take.")
    ezone_delivery_lease_s: float = Field(
        60.0, gt=0, description="A claimed delivery is retried after this long if its sender died mid-delivery."
    )
    ezone_delivery_concurrency: int = Field(16, ge=1, description="Deliveries sent at once by one process.")
    ezone_delivery_poll_interval_s: float = Field(1.0, gt=0, description="Fallback poll for due retries and digests.")

    @field_validator("ezone_default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # An unknown name fails at start, not at the first alert.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone name, e.g. America/New_York") from exc
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> "Settings":
        # A lease shorter than one call would hand a delivery still in flight to another sender: a needless duplicate.
        if self.ezone_delivery_lease_s <= self.ezone_delivery_timeout_s:
            raise ValueError("EZONE_DELIVERY_LEASE_S must be longer than EZONE_DELIVERY_TIMEOUT_S")
        return self
