"""`ezone import csv`: stream a student-results CSV file to the results service."""


def csv_command() -> None:
    raise NotImplementedError("being written")
