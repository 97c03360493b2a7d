"""The results service's tables (schema `results`)."""

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table

metadata = service_metadata("results")
schools = school_directory_table(metadata)
