"""`ezone import mcas`: load a statewide MCAS school-level file into the results service."""


def mcas_command() -> None:
    raise NotImplementedError("being written")
