"""The catalog service's tables (schema `catalog`)."""

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table

metadata = service_metadata("catalog")
schools = school_directory_table(metadata)
