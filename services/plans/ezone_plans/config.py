"""Settings of the plans service: the kit's settings plus anything only this service reads."""

from ezone_kit.settings import KitSettings


class Settings(KitSettings):
    pass
